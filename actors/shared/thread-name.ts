/**
 * Names the calling thread for the kernel (Linux's /proc/thread-self/comm), so top, ps -L and
 * per-thread CPU readings from /proc tell a member's threads apart. Elsewhere it does nothing.
 */
import { writeFileSync } from 'node:fs';

/** The kernel keeps this many bytes of a thread's name. */
const threadNameBytesMax = 15;

/** Names the calling thread `name` (cut to the kernel's 15 bytes); a system without /proc is left as is. */
export function nameThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, threadNameBytesMax));
  } catch {
    // No /proc (not Linux) or no thread-self (an old kernel): the name only helps diagnosis.
  }
}
