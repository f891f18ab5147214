/** Reading a plain HTTP request's body whole, within a bound; shared by the JSON gateway and the peer API. */
import type * as http from 'node:http';

/**
 * The whole body of `request`. Past `bytesMax` the request is destroyed (its connection with it)
 * and the promise rejects with `tooLarge(bytesSeen)`.
 */
export function readBodyBounded(
  request: http.IncomingMessage,
  bytesMax: number,
  tooLarge: (bytesSeen: number) => Error,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes <= bytesMax) return void chunks.push(chunk);
      request.destroy();
      reject(tooLarge(bytes));
    });
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
