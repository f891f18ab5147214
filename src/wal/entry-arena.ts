/** Entry data gathered into a few transferable buffers. */

/** Default size of the buffers EntryArena gathers entry data into; a larger entry gets one of its own. */
const entryArenaChunkBytesDefault = 16 * 1024 * 1024;

/**
 * Entry data copied into a few large buffers, so a thread that hands entries to another can
 * transfer those buffers instead of having every entry cloned into an ArrayBuffer of its own (and a
 * transfer list of one buffer per entry grows quadratically: 3.3 s for 100k small entries). The WAL
 * reader gathers replayed entries here, so its segment buffer can be reused; the WAL client packs
 * each append here, sized to fit in one buffer.
 */
export class EntryArena {
  readonly buffers: ArrayBuffer[] = [];
  private chunk = new Uint8Array(0);
  private used = 0;

  constructor(private readonly chunkBytes = entryArenaChunkBytesDefault) {}

  copy(data: Uint8Array): Uint8Array {
    if (data.length > this.chunk.length - this.used) {
      this.chunk = new Uint8Array(Math.max(this.chunkBytes, data.length));
      this.buffers.push(this.chunk.buffer);
      this.used = 0;
    }
    const copied = this.chunk.subarray(this.used, this.used + data.length);
    copied.set(data);
    this.used += data.length;
    return copied;
  }
}
