/** The record `fetchApt` leaves in a prefix: which packages were unpacked there. */
export const APT_RECORD = '.rocmflow/apt-packages.json';

/** One .deb that was unpacked. */
export interface AptPackage {
  name: string;
  version: string;
  architecture: string;
  /** The .deb file name as downloaded. */
  file: string;
  sha256: string;
  size: number;
}

export interface AptRecord {
  /** The source lines used (deb822 or one-line form). */
  sources: string[];
  packages: AptPackage[];
}
