/** Standard input for tsetcdctl commands, read lazily and line by line. */

/** Reads stdin as etcdctl's bufio reader does: whole lines, or "EOF" for an unterminated tail. */
export class StdinReader {
  private buffered = Buffer.alloc(0);
  private ended = false;
  private iterator: AsyncIterator<Buffer> | undefined;

  /** `open` is called on the first read only, so stdin is left alone by commands that ignore it. */
  constructor(private readonly open: () => AsyncIterator<Buffer>) {}

  /** The next line with its newline, or undefined at end of input (Go's io.EOF). */
  async readLine(): Promise<string | undefined> {
    for (;;) {
      const newline = this.buffered.indexOf(0x0a);
      if (newline >= 0) {
        const line = this.buffered.subarray(0, newline + 1).toString('utf8');
        this.buffered = this.buffered.subarray(newline + 1);
        return line;
      }
      if (!(await this.fill())) return undefined;
    }
  }

  /** Everything left on stdin. */
  async readAll(): Promise<Buffer> {
    while (await this.fill());
    const all = this.buffered;
    this.buffered = Buffer.alloc(0);
    return all;
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    this.iterator ??= this.open();
    const next = await this.iterator.next();
    if (next.done === true) {
      this.ended = true;
      return false;
    }
    this.buffered = Buffer.concat([this.buffered, Buffer.from(next.value)]);
    return true;
  }
}
