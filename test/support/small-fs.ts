/**
 * A real, small ext4 file system on a loop device, for the tests of full and read-only disks: its
 * free space is set with a filler file made by fallocate, and it can be remounted read-only.
 * Needs root and loop devices; where they are missing the tests are skipped loudly, and on CI
 * (CI=true) they fail instead, since CI must run them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function unavailableReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (mount -o loop needs it)';
  for (const tool of ['mkfs.ext4', 'losetup', 'fallocate', 'mount']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is missing`;
    }
  }
  try {
    execFileSync('losetup', ['-f'], { stdio: 'ignore' });
  } catch {
    return 'no free loop device';
  }
  return null;
}

/** Why the small file system tests cannot run here, or null when they can. */
export const smallFsUnavailable: string | null = unavailableReason();
if (smallFsUnavailable !== null) {
  if (process.env.CI === 'true') throw new Error(`disk fault tests cannot run on CI: ${smallFsUnavailable}`);
  console.warn(`\n*** SKIPPING the full-disk and read-only tests: ${smallFsUnavailable} ***\n`);
}

export class SmallFs {
  /** The mounted file system's root. */
  readonly dir: string;
  readonly #base: string;
  readonly #filler: string;

  private constructor(base: string) {
    this.#base = base;
    this.dir = path.join(base, 'mnt');
    this.#filler = path.join(this.dir, '.filler');
  }

  /** Makes and mounts a file system of `mib` MiB, with no blocks reserved for root. */
  static create(mib: number): SmallFs {
    const base = mkdtempSync(path.join(tmpdir(), 'tcsync-smallfs-'));
    const fs = new SmallFs(base);
    const image = path.join(base, 'fs.img');
    execFileSync('truncate', ['-s', `${mib}M`, image]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-m', '0', image]);
    mkdirSync(fs.dir);
    execFileSync('mount', ['-o', 'loop', image, fs.dir]);
    return fs;
  }

  /** Bytes that an unprivileged writer may still use. */
  freeBytes(): number {
    const st = statfsSync(this.dir);
    return st.bavail * st.bsize;
  }

  /**
   * Takes space with the filler file until about `bytes` remain free (0: none at all). The filler
   * is allocated, not written, so filling is instant.
   */
  leaveFree(bytes: number): void {
    this.release();
    // The filler's own extent tree needs a few blocks: ask for a little less, then top it up.
    const take = this.freeBytes() - bytes - 64 * 1024;
    if (take > 0) execFileSync('fallocate', ['-l', String(take), this.#filler]);
    for (let i = 0; i < 32 && this.freeBytes() > bytes; i++) {
      const more = Math.max(this.freeBytes() - bytes, 4096);
      try {
        execFileSync('fallocate', ['-l', String(more), `${this.#filler}-${i}`], { stdio: 'ignore' });
      } catch {
        if (bytes > 0) break;
        // Full but for the filler's metadata: take what is left block by block.
        try {
          execFileSync('fallocate', ['-l', '4096', `${this.#filler}-${i}`], { stdio: 'ignore' });
        } catch {
          break;
        }
      }
    }
  }

  /** Gives the filler's space back. */
  release(): void {
    for (const name of readdirSync(this.dir)) {
      if (name.startsWith('.filler')) rmSync(path.join(this.dir, name), { force: true });
    }
    execFileSync('sync', ['-f', this.dir]);
  }

  remount(mode: 'ro' | 'rw'): void {
    if (mode === 'ro') execFileSync('sync', ['-f', this.dir]);
    execFileSync('mount', ['-o', `remount,${mode}`, this.dir]);
  }

  /** Unmounts and removes everything. */
  destroy(): void {
    try {
      execFileSync('umount', [this.dir]);
    } catch {
      execFileSync('umount', ['-l', this.dir]);
    }
    rmSync(this.#base, { recursive: true, force: true });
  }
}
