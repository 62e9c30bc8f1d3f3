/** Containers and volumes of one test file: started by name, waited for, and all removed afterwards. */
import { freePorts, untilAnswered } from '../../deploy/proxy-checks.js';
import { podman, podmanStatus, uniqueName } from './podman.js';

export interface Started {
  readonly name: string;
  /** http://127.0.0.1:PORT/, the container's port published on loopback. */
  readonly url: string;
}

export class ContainerSet {
  readonly #image: string;
  readonly #containers: string[] = [];
  readonly #volumes: string[] = [];

  constructor(image: string) {
    this.#image = image;
  }

  /** A named volume of this set's own. */
  volume(purpose: string): string {
    const name = uniqueName(purpose);
    this.#volumes.push(name);
    return name;
  }

  /**
   * `podman run -d` of the image with `runArgs` (volumes, -e ...) and the image's own command,
   * its `containerPort` published on loopback; resolves once it answers HTTP there.
   */
  async start(purpose: string, runArgs: readonly string[], containerPort = 8080): Promise<Started> {
    const name = uniqueName(purpose);
    const [port] = await freePorts(1);
    this.#containers.push(name);
    await podman(['run', '--detach', '--name', name, '--publish', `127.0.0.1:${port}:${containerPort}`, ...runArgs, this.#image]);
    const url = `http://127.0.0.1:${port}/`;
    await untilAnswered(url, () => this.#exitedWhy(name));
    return { name, url };
  }

  /** `podman run --rm` of the image with `args` after it (a tcsync command); its output and exit code. */
  async once(runArgs: readonly string[], args: readonly string[]): Promise<{ code: number; output: string }> {
    return podmanStatus(['run', '--rm', ...runArgs, this.#image, ...args]);
  }

  async logs(name: string): Promise<string> {
    const { stdout, stderr } = await podman(['logs', name]);
    return stdout + stderr;
  }

  async exitCode(name: string): Promise<number> {
    return Number((await podman(['inspect', '--format', '{{.State.ExitCode}}', name])).stdout.trim());
  }

  async remove(name: string): Promise<void> {
    await podmanStatus(['rm', '--force', '--time', '0', name]);
  }

  /** Removes every container, then every volume, of this set; never throws, so it can run after a failure. */
  async removeAll(): Promise<void> {
    for (const name of this.#containers) await this.remove(name);
    for (const name of this.#volumes) await podmanStatus(['volume', 'rm', '--force', name]);
  }

  async #exitedWhy(name: string): Promise<string | null> {
    const state = (await podmanStatus(['inspect', '--format', '{{.State.Status}}', name])).output.trim();
    if (state === 'running' || state === 'created') return null;
    return `container ${name} is ${state}: ${await this.logs(name).catch(() => '')}`;
  }
}
