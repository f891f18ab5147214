/** Go's os package error texts for failures Node reports as errno errors. */

/** Go's os.Open error text for a failed Node read: "open <path>: no such file or directory". */
export function goOpenErrorText(path: string, error: NodeJS.ErrnoException): string {
  const description = error.message.replace(/^[A-Z]+: /, '').replace(/, \w+ '.*'$/, '');
  return `open ${path}: ${description}`;
}
