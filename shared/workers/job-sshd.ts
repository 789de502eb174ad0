/**
 * What every job shell's sshd is, on whichever worker runs it: root logs in with the job's key
 * and nothing else (no password, no keyboard-interactive, no PAM), and sshd writes no pid file
 * (the worker follows its process itself).
 */
export const KEY_ONLY_ROOT_LOGIN = ['PidFile none', 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no'] as const;
