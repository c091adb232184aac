// The `metallb` command (bin/metallb.js runs this). The commands are registered in program.ts.
import { main } from './program.js';

await main(process.argv);
