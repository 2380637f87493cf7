/**
 * Whether this process answers many requests over hours (the server,
 * src/server/). Code that may keep what it loaded or resolved for the
 * life of the process reads this and, in a long-lived one, either checks
 * again each time or refuses what it cannot check.
 */
let longLived = false;

export function setLongLived(): void {
  longLived = true;
}

export function isLongLived(): boolean {
  return longLived;
}
