// The `metallb` command (bin/metallb.js runs this). The commands are registered in program.ts.
import { main } from './program.js';

// `metallb … | head`: a reader that goes away ends the output, not the process with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

await main(process.argv);
