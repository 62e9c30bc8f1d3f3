/**
 * A compose file of the repository brought up with podman-compose under a project name of its
 * own (its containers, network and volumes carry it), with the images already built: `up` never
 * builds, so that the tcsync image under test is the one the test built from the Dockerfile.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, removeDir } from '../temp-dir.js';
import { podman, podmanStatus, run, uniqueName } from './podman.js';

const REPOSITORY = fileURLToPath(new URL('../../../', import.meta.url));

export class ComposeProject {
  readonly name = uniqueName('compose');
  readonly #file: string;
  readonly #env: NodeJS.ProcessEnv;
  #overrideDir: string | null = null;

  /** `file` relative to the repository; `env` is what a user would export before `up`. */
  constructor(file: string, env: Readonly<Record<string, string>>) {
    this.#file = path.join(REPOSITORY, file);
    this.#env = { ...process.env, ...env };
  }

  /** Adds a compose file given as an object (YAML is a superset of JSON), merged over the project's. */
  async override(content: object): Promise<void> {
    this.#overrideDir ??= await makeTempDir('tcsync-compose-');
    await writeFile(path.join(this.#overrideDir, 'override.yaml'), JSON.stringify(content));
  }

  async up(): Promise<void> {
    await this.#compose(['up', '--detach', '--no-build']);
  }

  /** `down` as a user types it: containers and network go, named volumes stay. */
  async down(): Promise<void> {
    await this.#compose(['down']);
  }

  /** The container of one service (podman-compose names them PROJECT_SERVICE_1). */
  container(service: string): string {
    return `${this.name}_${service}_1`;
  }

  async logs(service: string): Promise<string> {
    const { stdout, stderr } = await podman(['logs', this.container(service)]);
    return stdout + stderr;
  }

  /** Everything the project made, volumes included; never throws, so it can run after a failure. */
  async destroy(): Promise<void> {
    await this.#compose(['down', '--volumes']).catch(() => undefined);
    // podman-compose 1.0.3's down leaves the project's network behind.
    for (const kind of ['volume', 'network']) {
      const { output } = await podmanStatus([kind, 'ls', '--quiet', '--filter', `label=io.podman.compose.project=${this.name}`]);
      for (const name of output.split('\n').filter((line) => line.startsWith(this.name))) {
        await podmanStatus([kind, 'rm', '--force', name]);
      }
    }
    if (this.#overrideDir !== null) await removeDir(this.#overrideDir);
  }

  async #compose(args: readonly string[]): Promise<void> {
    const files = ['-f', this.#file, ...(this.#overrideDir === null ? [] : ['-f', path.join(this.#overrideDir, 'override.yaml')])];
    await run('podman-compose', ['--project-name', this.name, ...files, ...args], { env: this.#env, cwd: REPOSITORY, timeoutMs: 180_000 });
  }
}
