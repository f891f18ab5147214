/**
 * How long a test waits for something that should happen (a message delivered, a watcher caught
 * up, a link up) before it fails. A bound on a hang, not a measure of speed: on a loaded machine
 * (the suite runs several files at once on two cores) such waits took longer than 5 and 8 s, and
 * a longer bound costs nothing when the thing happens.
 */
export const eventWaitMsMax = 30_000;
