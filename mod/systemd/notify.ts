/**
 * sd_notify without libsystemd: datagrams to `$NOTIFY_SOCKET` (READY=1, STOPPING=1,
 * WATCHDOG=1, STATUS=…). A no-op when the variable is absent (not run by systemd).
 */

import type { Logger } from "../log/mod.ts";

export interface NotifierOptions {
  /** Value of $NOTIFY_SOCKET (read by main.ts). */
  socket?: string;
  /** $WATCHDOG_USEC, when the unit sets WatchdogSec. */
  watchdogUsec?: number;
  /** Folder where the sending socket is bound (the state dir). */
  bindDir: string;
}

export class SystemdNotifier {
  #conn?: Deno.DatagramConn;
  #bindPath?: string;
  #watchdog?: ReturnType<typeof setInterval>;
  #warned = false;

  constructor(private readonly log: Logger, private readonly options: NotifierOptions) {}

  get enabled(): boolean {
    return !!this.options.socket;
  }

  async notify(state: string): Promise<void> {
    const target = this.options.socket;
    if (!target) return;
    if (target.startsWith("@")) {
      if (!this.#warned) {
        this.log.warn("abstract NOTIFY_SOCKET is not supported; systemd will not see READY", {
          socket: target,
        });
      }
      this.#warned = true;
      return;
    }
    try {
      if (!this.#conn) {
        this.#bindPath = `${this.options.bindDir}/.notify-${Deno.pid}.sock`;
        await Deno.remove(this.#bindPath).catch(() => {});
        this.#conn = Deno.listenDatagram({ path: this.#bindPath, transport: "unixpacket" });
      }
      await this.#conn.send(new TextEncoder().encode(state), {
        transport: "unixpacket",
        path: target,
      });
    } catch (err) {
      this.log.warn("cannot notify systemd", { socket: target, state, error: err });
    }
  }

  /** READY=1 and, when WatchdogSec is set, WATCHDOG=1 at half the interval. */
  async ready(status: string): Promise<void> {
    await this.notify(`READY=1\nSTATUS=${status}`);
    const usec = this.options.watchdogUsec;
    if (usec && usec > 0 && !this.#watchdog) {
      this.#watchdog = setInterval(() => this.notify("WATCHDOG=1"), Math.max(500, usec / 2000));
    }
  }

  async stopping(): Promise<void> {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
    await this.notify("STOPPING=1");
  }

  async close(): Promise<void> {
    clearInterval(this.#watchdog);
    this.#conn?.close();
    this.#conn = undefined;
    if (this.#bindPath) await Deno.remove(this.#bindPath).catch(() => {});
  }
}
