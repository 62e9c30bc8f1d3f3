/**
 * The images the container tests need, each built once per machine and reused: the stand-in for
 * the official node:20-bookworm-slim (debootstrap, about 2 minutes), stand-ins for the other
 * images the compose files name, and tcsync's own image from the repository's Dockerfile.
 *
 * Builds run one at a time across vitest workers and across test runs on this machine, under a
 * lock on a file in /var/tmp (podman's image store is machine-wide too): the first builds, the
 * others wait, then find the image there (or podman's layer cache warm).
 */
import { copyFile, cp } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import lockfile from 'proper-lockfile';
import { makeTempDir, removeDir } from '../temp-dir.js';
import { podman, podmanStatus, run } from './podman.js';

const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));
const LOCK = '/var/tmp/tcsync-test-container-images';

/** What `FROM node:20-bookworm-slim` resolves to. */
export const NODE_BASE_IMAGE = 'docker.io/library/node:20-bookworm-slim';
/** The tags the compose files pin, whose stand-ins are built from Debian's packages. */
export const CADDY_IMAGE = 'docker.io/library/caddy:2.10';
export const POSTGRES_IMAGE = 'docker.io/library/postgres:17-bookworm';

/** A cold build of everything (base, tcsync with better-sqlite3 compiled, stand-ins) on 2 busy cores. */
export const IMAGE_BUILD_TIMEOUT_MS = 12 * 60_000;

async function exclusively<T>(work: () => Promise<T>): Promise<T> {
  // Held for minutes: proper-lockfile refreshes it meanwhile; a holder that died leaves a lock
  // that goes stale after 60 s.
  const release = await lockfile.lock(LOCK, {
    realpath: false,
    stale: 60_000,
    retries: { retries: IMAGE_BUILD_TIMEOUT_MS / 2000, minTimeout: 2000, maxTimeout: 2000, factor: 1 },
  });
  try {
    return await work();
  } finally {
    await release();
  }
}

async function imageExists(name: string): Promise<boolean> {
  return (await podmanStatus(['image', 'exists', name])).code === 0;
}

async function ensureNodeBase(): Promise<void> {
  if (await imageExists(NODE_BASE_IMAGE)) return;
  await run(path.join(HERE, 'node-base-image.sh'), [NODE_BASE_IMAGE], { timeoutMs: IMAGE_BUILD_TIMEOUT_MS });
}

/** Builds the stand-in in stand-ins/NAME, with `extraFiles` copied into its build context. */
async function ensureStandIn(tag: string, name: string, extraFiles: Readonly<Record<string, string>> = {}): Promise<void> {
  if (await imageExists(tag)) return;
  await ensureNodeBase();
  const context = await makeTempDir(`tcsync-stand-in-${name}-`);
  try {
    await cp(path.join(HERE, 'stand-ins', name), context, { recursive: true });
    for (const [file, source] of Object.entries(extraFiles)) await copyFile(source, path.join(context, file));
    await podman(['build', '--quiet', '--format', 'docker', '--tag', tag, context], { timeoutMs: IMAGE_BUILD_TIMEOUT_MS });
  } finally {
    await removeDir(context);
  }
}

/**
 * Builds tcsync's image from the repository's Dockerfile as `docker build` would (docker format,
 * which keeps HEALTHCHECK), tagged `tag`; the base image is the local stand-in.
 */
export async function buildTcsyncImage(tag: string): Promise<void> {
  await exclusively(async () => {
    await ensureNodeBase();
    await podman(['build', '--quiet', '--format', 'docker', '--tag', tag, REPOSITORY], { timeoutMs: IMAGE_BUILD_TIMEOUT_MS });
  });
}

/** The stand-ins for the images compose.yaml and compose.postgres.yaml name besides tcsync's. */
export async function ensureComposeStandIns(options: { postgres: boolean }): Promise<void> {
  await exclusively(async () => {
    await ensureStandIn(CADDY_IMAGE, 'caddy', { caddy: '/usr/bin/caddy' });
    if (options.postgres) await ensureStandIn(POSTGRES_IMAGE, 'postgres');
  });
}

/** Removes a tag this run made (the layers stay cached for the next run). */
export async function removeImageTag(tag: string): Promise<void> {
  await podmanStatus(['rmi', tag]);
}

/** An image's size in bytes as podman reports it (uncompressed, all layers). */
export async function imageSize(name: string): Promise<number> {
  return Number((await podman(['image', 'inspect', '--format', '{{.Size}}', name])).stdout.trim());
}
