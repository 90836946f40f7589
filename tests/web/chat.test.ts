/**
 * The chat in headless Chromium against a real server (loopback, no keys: the local owner): generate with live
 * progress, ask about an uploaded image, edit a picked image, cancel a job, reroll; then reload and find it all in
 * history, the gallery and the image page (token grid, edit tree, download); labels, keyboard and phone width.
 * No console errors anywhere.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { openPage, screenshot, shapePng, startWebAndBrowser, usingShippedModel, type WatchedPage, type WebServer } from './helpers.ts';

// Page-side callbacks (page.evaluate) run in the browser; the tests' tsconfig has no DOM library.
declare const document: any;
declare const window: any;
declare function getComputedStyle(element: unknown): any;
declare function atob(data: string): string;
declare const DataTransfer: any;
declare const File: any;

let web: WebServer;
let browser: Browser;
let tab: WatchedPage;
let page: Page;

before(async () => {
  [web, browser] = await startWebAndBrowser();
  tab = await openPage(browser, web.url);
  page = tab.page;
});
after(async () => {
  await tab?.close();
  await browser?.close();
  await web?.stop();
});

const button = (name: string) => page.getByRole('button', { name, exact: true });

async function imageLoaded(selector: string): Promise<void> {
  await page.waitForFunction(
    (s) => {
      const img = document.querySelector(s);
      return img !== null && img.complete && img.naturalWidth > 0;
    },
    selector,
  );
}

test('the page loads on loopback without a key, with labelled controls', async () => {
  await page.goto('/');
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  await page.getByLabel('Prompt').waitFor();
  for (const name of ['Generate', 'Ask', 'Edit']) assert.equal(await button(name).count(), 1, name);
  await page.getByLabel('Seed').waitFor();
  await page.getByLabel('Scale').waitFor();
  await page.getByLabel('Attach image').waitFor();
  // Every control has an accessible name.
  const unlabelled = await page.evaluate(() =>
    ([...document.querySelectorAll('input, select, textarea, button')] as any[])
      .filter((el) => {
        const labelled = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
        return !(labelled || (el.tagName === 'BUTTON' && el.textContent?.trim()));
      })
      .map((el) => el.outerHTML as string),
  );
  assert.deepEqual(unlabelled, []);
  // Every control is reached with Tab, in reading order.
  const reached: string[] = [];
  for (let i = 0; i < 20; i += 1) {
    await page.keyboard.press('Tab');
    reached.push(
      await page.evaluate(() => {
        const el = document.activeElement;
        return ((el.labels?.[0]?.textContent ?? el.getAttribute('aria-label') ?? el.textContent) as string).trim();
      }),
    );
  }
  const order = ['Skip to content', 'Chat', 'History', 'Gallery', 'New conversation', 'Prompt', 'Attach image', 'Generate', 'Ask', 'Edit'];
  const firstRound = reached.slice(0, reached.indexOf('Edit') + 1);
  assert.deepEqual(firstRound.filter((name) => order.includes(name)), order, reached.join(' | '));
  assert.ok(reached.some((name) => name.startsWith('Seed')) && reached.some((name) => name.startsWith('Scale')), reached.join(' | '));
  await screenshot(page, 'chat-new');
  assert.deepEqual(tab.errors, []);
});

test('generate: progress while the job runs, then the image', async () => {
  web.held.hold();
  await page.getByLabel('Prompt').fill('a red circle on a white background');
  await page.getByLabel('Seed').fill('7');
  await page.getByLabel('Scale').selectOption('1');
  const defaultGuidance = web.held.model.manifest.sampling.image.cfgScale;
  assert.equal(await page.getByLabel('Guidance').getAttribute('placeholder'), `default (${defaultGuidance})`, "the model's default");
  await page.getByLabel('Guidance').fill('lots');
  await button('Generate').click();
  await page.getByText('Guidance is a number from 0 to 50 (1 is off).').waitFor();
  await page.getByLabel('Guidance').fill('2.5');
  await page.getByLabel('Self-check').check();
  await button('Generate').click();
  await page.waitForURL(/#\/c\//);
  const progress = page.getByRole('progressbar', { name: 'Progress' });
  await progress.waitFor();
  await page.locator('.progress[data-stage]:not([data-stage="QUEUED"])').waitFor();
  await screenshot(page, 'chat-progress');
  web.held.release();
  await page.locator('[data-task="GENERATE"][data-status="SUCCEEDED"]').waitFor();
  await imageLoaded('[data-task="GENERATE"] img.pixels');
  assert.equal(await progress.count(), 0);
  const caption = await page.locator('[data-task="GENERATE"] figcaption').textContent();
  assert.match(caption ?? '', /seed 7 · scale 1 · guidance 2\.5 · self-check/);
  assert.deepEqual(tab.errors, []);
});

test('ask about an uploaded image and see the answer', async () => {
  await page.getByLabel('Attach image').setInputFiles({ name: 'circle.png', mimeType: 'image/png', buffer: await shapePng() });
  await page.getByText('Attached: circle.png').waitFor();
  await page.getByLabel('Prompt').fill('What shape is in the image?');
  await button('Ask').click();
  const turn = page.locator('[data-task="UNDERSTAND"][data-status="SUCCEEDED"]');
  await turn.waitFor();
  await turn.locator('.answer').waitFor({ state: 'attached' });
  // The shipped model answers in words (the tiny bundle's random weights may say nothing).
  if (usingShippedModel()) assert.match((await turn.locator('.answer').textContent()) ?? '', /\w/);
  await imageLoaded('[data-task="UNDERSTAND"] img.pixels');
  assert.deepEqual(tab.errors, []);
});

test('drop an image on the composer to attach it', async () => {
  const png = (await shapePng({ r: 30, g: 160, b: 60 })).toString('base64');
  const dataTransfer = await page.evaluateHandle(async (base64) => {
    const bytes = Uint8Array.from(atob(base64), (c: string) => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], 'dropped.png', { type: 'image/png' }));
    return transfer;
  }, png);
  await page.dispatchEvent('form.composer', 'dragover', { dataTransfer });
  await page.dispatchEvent('form.composer', 'drop', { dataTransfer });
  await page.getByText('Attached: dropped.png').waitFor();
  await button('Remove image').click();
  await page.getByLabel('Attach image').waitFor();
  assert.deepEqual(tab.errors, []);
});

test('pick the generated image and edit it with an instruction', async () => {
  await page.locator('[data-task="GENERATE"]').getByRole('button', { name: 'Pick for editing' }).click();
  await page.locator('.chip[data-picked="stored"]').waitFor();
  // The prompt box has the focus after picking: type and press the button from the keyboard.
  await page.keyboard.type('make the circle blue');
  await button('Edit').focus();
  await page.keyboard.press('Enter');
  await page.locator('[data-task="EDIT"][data-status="SUCCEEDED"]').waitFor();
  await imageLoaded('[data-task="EDIT"] figure img.pixels');
  await screenshot(page, 'chat');
  assert.deepEqual(tab.errors, []);
});

test('cancel a running job', async () => {
  web.held.hold();
  await page.getByLabel('Prompt').fill('a green square');
  await button('Generate').click();
  const running = page.locator('[data-task="GENERATE"][data-status="RUNNING"], [data-task="GENERATE"][data-status="QUEUED"]');
  await running.getByRole('button', { name: 'Cancel' }).click();
  await page.locator('[data-task="GENERATE"][data-status="CANCELLED"]').getByText('Cancelled.').waitFor();
  web.held.release();
  assert.deepEqual(tab.errors, []);
});

test('reroll a turn: a new turn with a new seed', async () => {
  const before = await page.locator('[data-task="GENERATE"][data-status="SUCCEEDED"]').count();
  await page.locator('[data-task="GENERATE"][data-status="SUCCEEDED"]').first().getByRole('button', { name: 'Reroll' }).click();
  await page.waitForFunction((n) => document.querySelectorAll('[data-task="GENERATE"][data-status="SUCCEEDED"]').length === n + 1, before);
  assert.deepEqual(tab.errors, []);
});

test('after a reload: the conversation, history, search, the gallery and the image page', async () => {
  const conversationUrl = page.url();
  await page.reload();
  await page.locator('[data-task="EDIT"][data-status="SUCCEEDED"]').waitFor();
  assert.equal(await page.locator('.turn').count(), 5);

  await page.getByRole('link', { name: 'History', exact: true }).click();
  await page.getByRole('heading', { name: 'History' }).waitFor();
  await page.locator('[data-conversation-id]').first().waitFor();
  assert.equal(await page.locator('[data-conversation-id]').count(), 1);
  await screenshot(page, 'history');

  await page.getByLabel('Search prompts').fill('circle');
  await page.getByLabel('Search prompts').press('Enter');
  await page.locator('.found').first().waitFor();
  // The generate turn, its reroll and the edit (and the answer, should the model have said "circle").
  assert.ok((await page.locator('.found').count()) >= 3);
  await screenshot(page, 'search');

  await page.getByRole('link', { name: 'Gallery', exact: true }).click();
  await page.locator('[data-image-id]').first().waitFor();
  assert.equal(await page.locator('[data-image-id]').count(), 4); // generated, uploaded, edited, rerolled
  await screenshot(page, 'gallery');

  // The edited image's page: prompt, settings, timings, its parent, the token grid and download.
  await page.goto(conversationUrl);
  await page.locator('[data-task="EDIT"] figure a').click();
  await page.getByRole('heading', { name: 'make the circle blue' }).waitFor();
  const grid = page.getByRole('img', { name: /^Token grid: \d+×\d+ image tokens$/ });
  await grid.waitFor();
  const side = Number((await grid.getAttribute('aria-label'))!.match(/(\d+)×/)![1]);
  assert.equal(await grid.locator('text').count(), side * side);
  await page.getByRole('heading', { name: 'Settings' }).waitFor();
  await page.getByRole('heading', { name: 'Timings' }).waitFor();
  const download = page.getByRole('link', { name: 'Download PNG' });
  assert.match((await download.getAttribute('href')) ?? '', /\/images\/.+\.png/);
  const png = await page.evaluate(async (url) => (await fetch(url)).headers.get('content-type'), (await download.getAttribute('href'))!);
  assert.equal(png, 'image/png');
  await imageLoaded('.overlay img.pixels');
  const rendering = await page.locator('.overlay img').evaluate((img) => getComputedStyle(img).imageRendering);
  assert.equal(rendering, 'pixelated');
  await screenshot(page, 'image');

  // Up the edit tree to the generated image, which lists the edit among its children.
  await page.getByRole('link', { name: /^Parent image/ }).click();
  await page.getByRole('heading', { name: 'a red circle on a white background' }).waitFor();
  await page.getByRole('link', { name: /^Child image/ }).waitFor();
  assert.deepEqual(tab.errors, []);
});

test('readable at phone width (375 px)', async () => {
  const phone = await openPage(browser, web.url, { width: 375, height: 740 });
  try {
    await phone.page.goto('/');
    await phone.page.locator('.sidebar a[href^="#/c/"]').first().click();
    await phone.page.locator('[data-task="EDIT"][data-status="SUCCEEDED"]').waitFor();
    await screenshot(phone.page, 'chat-phone');
    const edited = await phone.page.locator('[data-task="EDIT"] figure a').getAttribute('href');
    for (const hash of ['', '#/history', '#/gallery', edited!]) {
      if (hash !== '') await phone.page.goto(`/${hash}`);
      await phone.page.locator('main h1').waitFor();
      await phone.page.waitForLoadState('networkidle');
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash || 'chat'}: ${overflow}px wider than the screen`);
    }
    assert.deepEqual(phone.errors, []);
  } finally {
    await phone.close();
  }
});

test('rename, then delete the conversation', async () => {
  await page.goto('/');
  await page.locator('.sidebar a[href^="#/c/"]').first().click();
  await page.locator('[data-task="EDIT"][data-status="SUCCEEDED"]').waitFor();
  await button('Rename').click();
  await page.getByLabel('Title').fill('Circles');
  await page.getByLabel('Title').press('Enter');
  await page.getByRole('heading', { name: 'Circles', exact: true }).waitFor();
  await page.reload();
  await page.getByRole('heading', { name: 'Circles', exact: true }).waitFor();
  await page.locator('.sidebar').getByRole('link', { name: 'Circles' }).waitFor();

  await button('Delete').click();
  await button('Keep it').click();
  await button('Delete').click();
  await button('Delete for good').click();
  await page.getByRole('heading', { name: 'New conversation' }).waitFor();
  await page.goto('/#/history');
  await page.getByText('No conversations yet.').waitFor();
  assert.deepEqual(tab.errors, []);
});
