/** How Go names the signals a member stops on (os.Signal's String()), which etcd logs. */
export const goSignalNames = { SIGINT: 'interrupt', SIGTERM: 'terminated' } as const;

/** The signals that stop a member cleanly, as in etcd. */
export type StopSignal = keyof typeof goSignalNames;
