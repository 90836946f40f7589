/**
 * History and gallery pagination in headless Chromium: more conversations and images than one page, loaded page by
 * page (`first`/`after`) as the list scrolls, newest first, without duplicates; at phone width too.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { gql, openPage, screenshot, startWebAndBrowser, type WebServer } from './helpers.ts';

declare const document: any;
declare const window: any;

let web: WebServer;
let browser: Browser;
const PROMPTS = Array.from({ length: 7 }, (_, i) => `shape number ${i + 1}`);

before(async () => {
  [web, browser] = await startWebAndBrowser();
  for (const prompt of PROMPTS) {
    const data = await gql(web.url, `mutation($input: GenerateInput!) { generate(input: $input) { turn { status } errors { code } } }`, {
      input: { prompt, scale: 3, seed: 1 },
    });
    assert.equal(data.generate.turn.status, 'SUCCEEDED');
  }
});
after(async () => {
  await browser?.close();
  await web?.stop();
});

/** Counts the page's requests of one GraphQL operation (start before navigating). */
function countRequests(page: import('playwright-core').Page, operation: string): () => number {
  let requests = 0;
  page.on('request', (request) => {
    if (request.url().endsWith('/graphql') && (request.postData() ?? '').includes(`query ${operation}(`)) requests += 1;
  });
  return () => requests;
}

async function scrollToEnd(page: import('playwright-core').Page, list: string, requests: () => number): Promise<{ names: string[]; requests: number }> {
  await page.locator(`${list} > li`).first().waitFor();
  for (let i = 0; i < 20; i += 1) {
    if (await page.getByText('That is all.').isVisible()) break;
    await page.mouse.wheel(0, 2000);
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.waitForTimeout(150);
  }
  await page.getByText('That is all.').waitFor();
  const names = await page
    .locator(`${list} > li`)
    .evaluateAll((items: any[]) => items.map((li) => (li.querySelector('a')?.textContent as string | undefined)?.trim() ?? ''));
  return { names, requests: requests() };
}

test('history: conversations newest first, page by page as the list scrolls', async () => {
  const tab = await openPage(browser, web.url, { width: 800, height: 420 });
  try {
    const counter = countRequests(tab.page, 'Conversations');
    await tab.page.goto('/#/history?first=3');
    const { names, requests } = await scrollToEnd(tab.page, 'ul[aria-label="Conversations"]', counter);
    assert.deepEqual(names, [...PROMPTS].reverse());
    assert.ok(requests >= 3, `${requests} page requests`);
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

test('gallery: every image, page by page; the origin filter', async () => {
  const tab = await openPage(browser, web.url, { width: 800, height: 420 });
  try {
    const counter = countRequests(tab.page, 'Images');
    await tab.page.goto('/#/gallery?first=2');
    const { names, requests } = await scrollToEnd(tab.page, 'ul[aria-label="Images"]', counter);
    assert.equal(names.length, PROMPTS.length, names.join(' | '));
    const ids = await tab.page.locator('[data-image-id]').evaluateAll((items: any[]) => items.map((li) => li.dataset.imageId as string));
    assert.equal(new Set(ids).size, PROMPTS.length);
    assert.ok(requests >= 4, `${requests} page requests`);
    await tab.page.getByLabel('Origin').selectOption('UPLOAD');
    await tab.page.getByText('No images yet.').waitFor();
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});

test('history at phone width', async () => {
  const tab = await openPage(browser, web.url, { width: 375, height: 740 });
  try {
    await tab.page.goto('/#/history');
    await tab.page.locator('[data-conversation-id]').nth(PROMPTS.length - 1).waitFor();
    const overflow = await tab.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${overflow}px wider than the screen`);
    await screenshot(tab.page, 'history-phone');
    await tab.page.goto('/#/gallery');
    await tab.page.locator('[data-image-id]').first().waitFor();
    await screenshot(tab.page, 'gallery-phone');
    assert.deepEqual(tab.errors, []);
  } finally {
    await tab.close();
  }
});
