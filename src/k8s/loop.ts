// The start/stop/sleep plumbing of a background loop (informers, leader election): `stop()` ends a sleep in
// progress at once, makes later sleeps return immediately, and waits for the loop to finish its current step.

export class LoopControl {
  private active = false;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private wake: (() => void) | undefined;

  /** True from `start` until `stop`. */
  get running(): boolean {
    return this.active;
  }

  /** Runs `body` in the background, unless already running. */
  start(body: () => Promise<void>): void {
    if (this.active) return;
    this.active = true;
    this.loop = body();
  }

  /** Marks the loop stopped, calls `interrupt` (e.g. to abort a request in flight), ends a sleep, waits for the loop. */
  async stop(interrupt?: () => void): Promise<void> {
    this.active = false;
    interrupt?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.wake?.();
    this.wake = undefined;
    await this.loop;
  }

  /** Waits `ms`; returns early when stopped meanwhile, at once when already stopped. */
  sleep(ms: number): Promise<void> {
    if (!this.active) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }
}
