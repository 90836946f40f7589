/**
 * The API-key flow in headless Chromium: a server with a key configured answers UNAUTHENTICATED without one, so
 * the page asks for a key, refuses a wrong one, keeps a right one across reloads (localStorage, used over HTTP and
 * for the graphql-ws subscription), and signs out.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { createApiKey, createUser } from '../../src/db/users.ts';
import { openPage, screenshot, startWebAndBrowser, type WatchedPage, type WebServer } from './helpers.ts';

declare const localStorage: any;

let web: WebServer;
let browser: Browser;
let key: string;

before(async () => {
  [web, browser] = await startWebAndBrowser();
  const database = web.server.services.database;
  const alice = await createUser(database, { displayName: 'alice' });
  key = (await createApiKey(database, alice.id, { name: 'web test', scopes: [] })).key;
});
after(async () => {
  await browser?.close();
  await web?.stop();
});

/** The browser reports each 401 answer as a console error; those are the server asking for a key, expected here. */
function unexpected(tab: WatchedPage): string[] {
  return tab.errors.filter((e) => !/Failed to load resource: the server responded with a status of 401/.test(e));
}

test('asks for a key, refuses a wrong one, keeps a right one, signs out', async () => {
  const tab = await openPage(browser, web.url);
  const page = tab.page;
  try {
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in with an API key' }).waitFor();
    await screenshot(page, 'api-key');

    await page.getByLabel('API key', { exact: true }).fill('dlk_00000000_not-a-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That API key was not accepted').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('dialect.apiKey')), null);

    await page.getByLabel('API key', { exact: true }).fill(key);
    await page.getByLabel('API key', { exact: true }).press('Enter');
    await page.locator('.who').getByText('alice').waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('dialect.apiKey')), key);

    // A job with live progress: the subscription authenticates with the key too.
    await page.getByLabel('Prompt').fill('a blue square');
    await page.getByRole('button', { name: 'Generate', exact: true }).click();
    await page.locator('[data-task="GENERATE"][data-status="SUCCEEDED"] img').waitFor();

    await page.reload();
    await page.locator('[data-task="GENERATE"][data-status="SUCCEEDED"]').waitFor();
    await page.locator('.who').getByText('alice').waitFor();

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in with an API key' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('dialect.apiKey')), null);
    assert.deepEqual(unexpected(tab), []);
  } finally {
    await tab.close();
  }
});
