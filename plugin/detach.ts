// The attach session's keyboard: everything the user types goes to the agent except the detach
// sequence, Ctrl-P then Ctrl-Q (docker's), which ends the session and leaves the agent running.
import { Transform, type TransformCallback } from "node:stream";

export const DETACH_KEYS = "Ctrl-P Ctrl-Q";
const CTRL_P = 0x10;
const CTRL_Q = 0x11;

export class DetachFilter extends Transform {
  /** A Ctrl-P held back until the next byte says whether it starts the sequence. */
  private pending = false;
  detached = false;
  private readonly onDetach: () => void;

  constructor(onDetach: () => void) {
    super();
    this.onDetach = onDetach;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    if (this.detached) {
      done();
      return;
    }
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.pending) {
        this.pending = false;
        if (byte === CTRL_Q) {
          this.detached = true;
          if (out.length > 0) this.push(Buffer.from(out));
          this.onDetach();
          done();
          return;
        }
        out.push(CTRL_P);
      }
      if (byte === CTRL_P) this.pending = true;
      else out.push(byte);
    }
    if (out.length > 0) this.push(Buffer.from(out));
    done();
  }
}
