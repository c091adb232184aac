// STUB: replaced by the work that owns this command.
import type { Command } from 'commander';

export function registerDevApiserver(program: Command): void {
  void program;
}
