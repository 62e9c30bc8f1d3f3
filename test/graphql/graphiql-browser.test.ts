/**
 * GraphiQL in a real browser with no internet: Debian's Chromium loads the playground from
 * GET /graphql while every request to a non-loopback host is aborted, a query is typed into
 * the editor and run, and the result pane shows the server's answer.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { expectData } from './support/expect-error.js';
import { startGraphqlServer, type TestServer } from './support/graphql-server.js';
import { addChain, newClientId } from './support/ops.js';

const CHROMIUM = '/usr/bin/chromium';
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

let server: TestServer;
let context: BrowserContext;
let profile: string;
/** Requests the page tried to make off this machine (each one aborted). */
const blocked: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
  server = await startGraphqlServer();
  profile = mkdtempSync(path.join(tmpdir(), 'tcsync-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === 'data:' || url.protocol === 'blob:' || LOOPBACK.has(url.hostname)) return route.continue();
    blocked.push(url.href);
    return route.abort('internetdisconnected');
  });
});

afterAll(async () => {
  await context?.close();
  await server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('the playground loads offline, runs a typed query and shows the result', async () => {
  const clientId = newClientId();
  const [latest] = (await addChain(server, clientId, 1)) as [string];
  expect(expectData(await server.gql(`{ client(id: "${clientId}") { latestVersionId } }`)).client.latestVersionId).toBe(latest);

  const page = await context.newPage();
  const response = await page.goto(server.url);
  expect(response?.status()).toBe(200);
  expect(response?.headers()['content-type']).toMatch(/^text\/html/);

  const executeButton = page.getByRole('button', { name: /Execute query/ });
  await executeButton.waitFor({ timeout: 30_000 });

  // Replace the default query: focus the query editor, select everything, type over it.
  const queryEditor = page.locator('.graphiql-query-editor .monaco-editor').first();
  await queryEditor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(`query Typed { client(id: "${clientId.toUpperCase()}") { id latestVersionId } }`);
  await executeButton.click();

  const result = page.locator('.graphiql-response');
  await expect.poll(async () => result.innerText(), { timeout: 30_000 }).toContain(latest);
  const text = (await result.innerText()).replace(/\s+/g, ' ');
  // The UUID scalar answers the canonical spelling of the upper-case id typed in.
  expect(text).toContain(`"id": "${clientId}"`);
  expect(text).toContain(`"latestVersionId": "${latest}"`);

  expect(blocked).toEqual([]);
  await page.close();
});
