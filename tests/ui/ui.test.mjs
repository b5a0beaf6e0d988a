// The web UI, driven in Debian's Chromium against a running server (BASE_URL), as a person would use it:
// upload three files, watch them finish live, download, retry, delete, and see a SQL insert appear.

import assert from 'node:assert/strict';
import http from 'node:http';
import { mkdir, readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { encodePng, imageSize, launchBrowser, psql, samplePng } from './support.mjs';

const BASE_URL = (process.env.BASE_URL || 'http://127.0.0.1:8080').replace(/\/$/, '');
const PSQL_URL = process.env.PSQL_URL || '';
const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const LIVE_TIMEOUT = 30_000; // processing a small PNG takes well under a second; CI machines are slow

// Names unique to this run, so a database with older rows (DATABASE_URL given) cannot confuse the test.
const RUN = Date.now().toString(36);
const SUNSET = { name: `sunset-${RUN}.png`, width: 320, height: 240, bytes: samplePng(320, 240, [255, 94, 58], [120, 40, 160]) };
const OCEAN = { name: `ocean-${RUN}.png`, width: 400, height: 300, bytes: samplePng(400, 300, [0, 150, 199], [0, 60, 110]) };
// Text in disguise: the name and type claim JPEG, so only the server's sniffing can refuse it.
const FAKE = { name: `holiday-photo-${RUN}.jpg`, bytes: Buffer.from('Dear diary,\nthis is not a photo at all.\n') };

/** Console messages the story provokes on purpose: the browser logs every non-2xx response. */
const EXPECTED_CONSOLE = [/status of 415/, /status of 401/, /status of 400.*\/api\/presets\//, /status of 404.*\/signed-url/];
// Presets and variants: names unique to this run ([a-z0-9_-]). THUMB and SCRATCH are made in the
// page; SMALL is there from the start, for the variant tests.
const THUMB = `thumb-${RUN}`;
const SCRATCH = `scratch-${RUN}`;
const SMALL = `small-${RUN}`;
const SMALL_PIPELINE = { width: 48, format: 'webp' };
// Picked as the main pipeline: MAIN makes 40 px PNGs; AUTO asks for `format: auto`, which the main
// output cannot negotiate (the page drops it and says so).
const MAIN = `main-${RUN}`;
const MAIN_PIPELINE = { width: 40, format: 'png' };
const AUTO = `auto-${RUN}`;
const AUTO_PIPELINE = { width: 30, format: 'auto' };

let browser;
let page;
const consoleErrors = [];
/**
 * Images the story deletes: a refresh the event stream started may still be on its way when the
 * delete lands, and its 404 (which the page handles by dropping the row) is logged by the browser.
 */
const deletedIds = new Set();
const uploadRequests = [];

function rowLocator(name) {
  return page.locator('tr.image-row', { has: page.locator('.cell-name__file', { hasText: name }) });
}

async function waitForRow(name, status, timeout = LIVE_TIMEOUT) {
  await page.waitForFunction(
    ([n, s]) =>
      [...document.querySelectorAll('tr.image-row')].some(
        (tr) => tr.querySelector('.cell-name__file')?.textContent === n && (!s || tr.dataset.status === s),
      ),
    [name, status],
    { timeout },
  );
  return rowLocator(name);
}

async function apiJson(path, init) {
  const res = await fetch(`${BASE_URL}${path}`, init);
  return { status: res.status, body: res.status === 204 ? null : await res.json().catch(() => null) };
}

describe('web UI in a real browser', { timeout: 240_000 }, () => {
  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    browser = await launchBrowser();
    // The variant tests' preset, there before the page loads.
    const res = await fetch(`${BASE_URL}/api/presets/${SMALL}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(SMALL_PIPELINE) });
    assert.equal(res.status, 201, `PUT /api/presets/${SMALL}`);
    for (const [name, pipeline] of [[MAIN, MAIN_PIPELINE], [AUTO, AUTO_PIPELINE]]) {
      const made = await fetch(`${BASE_URL}/api/presets/${name}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(pipeline) });
      assert.equal(made.status, 201, `PUT /api/presets/${name}`);
    }
    page = browser.context.pages()[0] || (await browser.context.newPage());
    page.setDefaultTimeout(LIVE_TIMEOUT);
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (${msg.location().url || 'page'})`);
    });
    page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
    page.on('request', (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/images') uploadRequests.push(req.url());
    });
  });

  after(async () => {
    if (page) await page.screenshot({ path: `${ARTIFACTS}last-state.png`, fullPage: true }).catch(() => {});
    await browser?.close();
  });

  it('opens the page with its styles, script and live connection', async () => {
    const response = await page.goto(`${BASE_URL}/`, { waitUntil: 'load' });
    assert.equal(response.status(), 200);
    await page.waitForSelector('#live-indicator[data-state="live"]');
    const appBarColor = await page.$eval('.app-bar', (el) => getComputedStyle(el).backgroundColor);
    assert.equal(appBarColor, 'rgb(25, 118, 210)', 'style.css is applied');
    await page.waitForFunction(() => document.querySelector('[data-count="all"]')?.textContent !== '–');
    // Marks this document: if anything reloads the page, the mark is gone.
    await page.evaluate(() => {
      window.__sameDocument = true;
    });
  });

  it('can be driven from the keyboard', async () => {
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'language-select', 'the language switch, in the header');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'token-button');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'pick-button', 'the file picker is one Tab away');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.tagName), 'SUMMARY', 'then the processing options');
    await page.focus('.filter-chip[data-status="completed"]');
    await page.keyboard.press('Space');
    await page.waitForFunction(() => document.querySelector('.filter-chip[data-status="completed"]').getAttribute('aria-pressed') === 'true');
    await page.focus('.filter-chip[data-status=""]');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.querySelector('.filter-chip[data-status=""]').getAttribute('aria-pressed') === 'true');
  });

  it('uploads three files with width=200; the non-image is refused with its error', async () => {
    await page.fill('#op-width', '200');
    await page.waitForFunction(() => document.getElementById('ops-summary').textContent.includes('width 200px'));
    await page.setInputFiles('#file-input', [
      { name: SUNSET.name, mimeType: 'image/png', buffer: SUNSET.bytes },
      { name: OCEAN.name, mimeType: 'image/png', buffer: OCEAN.bytes },
      { name: FAKE.name, mimeType: 'image/jpeg', buffer: FAKE.bytes },
    ]);
    const refused = page.locator(`.upload-item[data-state="error"][data-name="${FAKE.name}"]`);
    await refused.waitFor();
    const message = await refused.locator('.upload-item__status').textContent();
    assert.match(message, /415/, `the refusal names the status: ${message}`);
    assert.ok(message.replace(/\(HTTP 415\)/, '').trim().length > 5, `a human message comes with it: ${message}`);
    assert.equal(uploadRequests.length, 3, 'one request per file');
    assert.equal(await rowLocator(FAKE.name).count(), 0, 'a refused upload makes no row');
  });

  it('refuses an obvious non-image in the browser, before any request', async () => {
    await page.setInputFiles('#file-input', [{ name: 'readme.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') }]);
    const item = page.locator('.upload-item[data-state="error"][data-name="readme.txt"]');
    await item.waitFor();
    assert.match(await item.textContent(), /not an image/i);
    assert.equal(uploadRequests.length, 3, 'no request for a client-side refusal');
  });

  it('shows both images completed, live, at the requested width', async () => {
    for (const image of [SUNSET, OCEAN]) {
      const row = await waitForRow(image.name, 'completed');
      const expectedHeight = Math.round((image.height * 200) / image.width);
      const dims = await row.locator('td[data-label="Dimensions"]').textContent();
      assert.equal(dims.replace(/\s+/g, ' ').trim(), `${image.width}×${image.height} → 200×${expectedHeight}`);
      assert.match(await row.locator('td[data-label="Size"]').textContent(), /B → .*B/);
      assert.match(await row.locator('td[data-label="Time"]').textContent(), /\d+(\.\d+)? (ms|s)/);
      await row.locator('.thumb img').waitFor();
      const decoded = await row.locator('.thumb img').evaluate((img) => img.decode().then(() => img.naturalWidth > 0));
      assert.ok(decoded, `the thumbnail of ${image.name} decodes`);
    }
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was never reloaded');
    // Screen readers hear about it too, in one polite sentence.
    await page.waitForFunction(() => /completed/.test(document.getElementById('status-announcer').textContent));
  });

  it('downloads the processed file, which decodes at 200 px wide', async () => {
    const row = rowLocator(SUNSET.name);
    const [download] = await Promise.all([page.waitForEvent('download'), row.locator('[data-action="download-processed"]').click()]);
    const bytes = await readFile(await download.path());
    const size = imageSize(bytes);
    assert.deepEqual(size, { format: 'png', width: 200, height: 150 });
    assert.match(download.suggestedFilename(), new RegExp(`^sunset-${RUN}.*\\.png$`));

    const [original] = await Promise.all([page.waitForEvent('download'), row.locator('[data-action="download-original"]').click()]);
    assert.deepEqual(await readFile(await original.path()), SUNSET.bytes, 'the original comes back byte for byte');
  });

  it('uploads an image pasted on the page (a screenshot, say), but not a paste into a field', async () => {
    const pasted = { name: `pasted-${RUN}.png`, bytes: samplePng(120, 80, [250, 200, 30], [30, 90, 200]) };
    const requests = uploadRequests.length;
    const paste = (selector) =>
      page.evaluate(
        ([target, name, base64]) => {
          const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], name, { type: 'image/png' }));
          document.querySelector(target).dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }));
        },
        [selector, pasted.name, pasted.bytes.toString('base64')],
      );
    // Into a text field: that is typing, not an upload.
    await paste('#op-tint');
    await page.waitForTimeout(300);
    assert.equal(uploadRequests.length, requests, 'a paste into a field uploads nothing');
    await paste('body');
    const row = await waitForRow(pasted.name, 'completed');
    assert.equal(uploadRequests.length, requests + 1);
    const { body: image } = await apiJson(`/api/images/${await row.getAttribute('data-id')}`);
    assert.deepEqual([image.original.width, image.processed.width], [120, 120], 'the pasted bytes arrived whole (no upscale to 200)');
  });

  it('retries a completed image and shows it completed again', async () => {
    const row = rowLocator(SUNSET.name);
    const before = await row.getAttribute('data-processed-at');
    const [response] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === 'POST' && res.url().endsWith('/retry')),
      row.locator('[data-action="retry"]').click(),
    ]);
    assert.equal(response.status(), 202);
    await page.waitForFunction(
      ([name, previous]) => {
        const tr = [...document.querySelectorAll('tr.image-row')].find((r) => r.querySelector('.cell-name__file')?.textContent === name);
        return tr && tr.dataset.status === 'completed' && tr.dataset.processedAt && tr.dataset.processedAt !== previous;
      },
      [SUNSET.name, before],
      { timeout: LIVE_TIMEOUT },
    );
  });

  it('deletes an image with the keyboard; the server forgets it', async () => {
    const row = rowLocator(OCEAN.name);
    const id = await row.getAttribute('data-id');
    deletedIds.add(id);
    await row.locator('[data-action="delete"]').focus();
    await page.keyboard.press('Enter');
    await row.waitFor({ state: 'detached' });
    const { status } = await apiJson(`/api/images/${id}`);
    assert.equal(status, 404);
  });

  it('sends the colour and filter options; the result is a red duotone', async () => {
    await page.fill('#op-saturation', '-100');
    await page.selectOption('#op-kernel', 'box');
    await page.fill('#op-tint', 'zz');
    await page.waitForFunction(() => document.getElementById('op-tint').classList.contains('field__input--invalid'));
    await page.fill('#op-tint', 'ff0000');
    // A person clicks the switch's label (the styled track covers the checkbox itself).
    const equalize = page.locator('label.switch:has(#op-equalize) .switch__label');
    await equalize.click();
    assert.equal(await page.isChecked('#op-equalize'), true);
    await page.waitForFunction(() => {
      const text = document.getElementById('ops-summary').textContent;
      return ['saturation -100', 'tint #ff0000', 'box kernel', 'equalize'].every((part) => text.includes(part));
    });
    await equalize.click();
    assert.equal(await page.isChecked('#op-equalize'), false);
    const tinted = { name: `tinted-${RUN}.png`, bytes: samplePng(160, 120, [30, 160, 90], [200, 200, 40]) };
    await page.setInputFiles('#file-input', [{ name: tinted.name, mimeType: 'image/png', buffer: tinted.bytes }]);
    const row = await waitForRow(tinted.name, 'completed');
    // What the server was sent, as it stored it: the fields in their fixed order, no equalize.
    const { body: image } = await apiJson(`/api/images/${await row.getAttribute('data-id')}`);
    assert.deepEqual(
      image.pipeline.steps.map((step) => step.op),
      ['resize', 'saturation', 'tint', 'kernel'],
      JSON.stringify(image.pipeline),
    );
    assert.deepEqual(image.pipeline.steps.slice(1), [
      { op: 'saturation', value: -100 },
      { op: 'tint', color: 'ff0000' },
      { op: 'kernel', kernel: 'box' },
    ]);
    await row.locator('.thumb img').waitFor();
    // The preview's mean colour, read back through a canvas: grey, then mapped onto red.
    const [r, g, b] = await row.locator('.thumb img').evaluate(async (img) => {
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const ctx = canvas.getContext('2d');
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      const sum = [0, 0, 0];
      for (let i = 0; i < data.length; i += 4) for (let c = 0; c < 3; c += 1) sum[c] += data[i + c];
      return sum.map((v) => v / (data.length / 4));
    });
    assert.ok(r > 60 && g < 12 && b < 12, `a red duotone on average: ${[r, g, b].map(Math.round)}`);
    await page.fill('#op-saturation', '');
    await page.fill('#op-tint', '');
    await page.selectOption('#op-kernel', '');
  });

  it('offers pad, gravity, focus and background, and checks what is typed', async () => {
    await page.fill('#op-height', '200');
    await page.selectOption('#op-fit', 'pad');
    await page.selectOption('#op-gravity', 'north');
    await page.fill('#op-background', '#00000080');
    await page.fill('#op-focus', '2,0.5');
    await page.waitForFunction(() => document.getElementById('op-focus').classList.contains('field__input--invalid'));
    await page.fill('#op-focus', '');
    await page.waitForFunction(() => {
      const text = document.getElementById('ops-summary').textContent;
      return ['fit pad', 'gravity north', 'background #00000080'].every((part) => text.includes(part));
    });
    const boxed = { name: `boxed-${RUN}.png`, bytes: samplePng(200, 100, [200, 40, 40], [40, 40, 200]) };
    await page.setInputFiles('#file-input', [{ name: boxed.name, mimeType: 'image/png', buffer: boxed.bytes }]);
    const row = await waitForRow(boxed.name, 'completed');
    const { body: image } = await apiJson(`/api/images/${await row.getAttribute('data-id')}`);
    assert.equal(image.processed.width, 200);
    assert.equal(image.processed.height, 200, 'padded to the box');
    assert.deepEqual(image.pipeline.steps[0], {
      op: 'resize', width: 200, height: 200, fit: 'pad', upscale: false, gravity: 'north', background: '00000080',
    });
    assert.equal(image.pipeline.background, '00000080');
    await page.fill('#op-height', '');
    await page.selectOption('#op-fit', '');
    await page.selectOption('#op-gravity', '');
    await page.fill('#op-background', '');
  });

  it('draws a completed image as a watermark, picked from the list', async () => {
    const sunsetId = await rowLocator(SUNSET.name).getAttribute('data-id');
    await page.focus('#op-watermark');
    await page.waitForFunction(
      (id) => [...document.querySelectorAll('#op-watermark option')].some((option) => option.value === id),
      sunsetId,
    );
    await page.selectOption('#op-watermark', sunsetId);
    await page.fill('#op-watermark_opacity', '100');
    await page.waitForFunction(
      (name) => document.getElementById('ops-summary').textContent.includes(`watermark “${name}”`),
      SUNSET.name,
    );
    const marked = { name: `marked-${RUN}.png`, bytes: samplePng(300, 200, [250, 250, 250], [230, 230, 230]) };
    await page.setInputFiles('#file-input', [{ name: marked.name, mimeType: 'image/png', buffer: marked.bytes }]);
    const row = await waitForRow(marked.name, 'completed');
    const { body: image } = await apiJson(`/api/images/${await row.getAttribute('data-id')}`);
    assert.deepEqual(image.pipeline.steps.at(-1), {
      op: 'watermark', image: sunsetId, gravity: 'southeast', opacity: 100, scale: 20,
    });
    await page.selectOption('#op-watermark', '');
    await page.fill('#op-watermark_opacity', '');
  });

  it('schedules an upload with a priority and "not before"; it waits, then runs', async () => {
    const at = new Date(Date.now() + 6000); // room for a slow upload to be seen pending first
    const pad = (n) => String(n).padStart(2, '0');
    const local = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
    await page.fill('#op-priority', '9');
    await page.fill('#op-not_before', local);
    await page.waitForFunction(() => /priority 9 · not before/.test(document.getElementById('ops-summary').textContent));
    const later = { name: `later-${RUN}.png`, bytes: samplePng(120, 90, [90, 90, 200], [20, 20, 60]) };
    await page.setInputFiles('#file-input', [{ name: later.name, mimeType: 'image/png', buffer: later.bytes }]);
    const row = await waitForRow(later.name, 'pending');
    const { body: image } = await apiJson(`/api/images/${await row.getAttribute('data-id')}`);
    assert.equal(image.priority, 9);
    assert.equal(Math.floor(Date.parse(image.not_before) / 1000), Math.floor(at.getTime() / 1000), image.not_before);
    await waitForRow(later.name, 'completed');
    const { body: done } = await apiJson(`/api/images/${image.id}`);
    assert.ok(Date.parse(done.started_at) >= Date.parse(image.not_before), `started ${done.started_at}`);
    await page.fill('#op-priority', '');
    await page.fill('#op-not_before', '');
  });

  it('cancels a scheduled upload, retries it, and cancels it again', async () => {
    const at = new Date(Date.now() + 3600_000); // an hour ahead: it stays pending
    const pad = (n) => String(n).padStart(2, '0');
    const local = `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
    await page.fill('#op-not_before', local);
    const held = { name: `held-${RUN}.png`, bytes: samplePng(100, 80, [200, 180, 40], [60, 40, 10]) };
    await page.setInputFiles('#file-input', [{ name: held.name, mimeType: 'image/png', buffer: held.bytes }]);
    await page.fill('#op-not_before', '');
    let row = await waitForRow(held.name, 'pending');
    await row.locator('[data-action="cancel"]').click();
    row = await waitForRow(held.name, 'cancelled');
    assert.equal((await row.locator('.status-chip').textContent()).trim(), 'Cancelled');
    const id = await row.getAttribute('data-id');
    assert.equal((await apiJson(`/api/images/${id}`)).body.status, 'cancelled');
    await page.click('.filter-chip[data-status="cancelled"]');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tr.image-row')];
      return rows.length > 0 && rows.every((tr) => tr.dataset.status === 'cancelled');
    });
    await page.click('.filter-chip[data-status=""]');
    row = await waitForRow(held.name, 'cancelled');
    await row.locator('[data-action="retry"]').click();
    row = await waitForRow(held.name, 'pending');
    await row.locator('[data-action="cancel"]').click();
    await waitForRow(held.name, 'cancelled');
  });

  it('retries all failed images, then deletes them, from the bulk buttons', async () => {
    // A PNG whose header reads fine and whose pixel data is cut short: accepted, then failed.
    const whole = samplePng(200, 150, [10, 200, 120], [200, 10, 120]);
    const broken = { name: `broken-${RUN}.png`, bytes: whole.subarray(0, whole.length - 60) };
    await page.setInputFiles('#file-input', [{ name: broken.name, mimeType: 'image/png', buffer: broken.bytes }]);
    let row = await waitForRow(broken.name, 'failed');
    const id = await row.getAttribute('data-id');
    deletedIds.add(id);
    await page.waitForFunction(() => !document.getElementById('retry-failed').disabled, null, { timeout: 10_000 });
    const before = (await apiJson(`/api/images/${id}`)).body.processed_at;
    await page.click('#retry-failed');
    // Back to pending, then failed again (the same bytes): a new run, a new processed_at.
    await page.waitForFunction(
      async ([imageId, first]) => {
        const image = await (await fetch(`/api/images/${imageId}`)).json();
        return image.status === 'failed' && image.processed_at !== first;
      },
      [id, before],
    );
    row = await waitForRow(broken.name, 'failed');
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('#delete-failed');
    await page.waitForFunction((name) => ![...document.querySelectorAll('.cell-name__file')].some((el) => el.textContent === name), broken.name);
    assert.equal((await apiJson(`/api/images/${id}`)).status, 404);
    const { body: stats } = await apiJson('/api/stats');
    assert.equal(stats.counts.failed, 0);
    await page.waitForFunction(() => document.getElementById('delete-failed').disabled, null, { timeout: 10_000 });
  });

  it('shows a row inserted with SQL by itself', { skip: PSQL_URL ? false : 'PSQL_URL is not set' }, async () => {
    const known = await page.$$eval('tr.image-row', (rows) => rows.map((tr) => tr.dataset.id));
    const png = samplePng(240, 160, [46, 125, 50], [200, 230, 120]);
    const id = await psql(PSQL_URL, `INSERT INTO processed_images (original_data) VALUES (decode('${png.toString('hex')}', 'hex')) RETURNING id`);
    assert.ok(!known.includes(id));
    await page.waitForSelector(`tr.image-row[data-id="${id}"][data-status="completed"]`, { timeout: LIVE_TIMEOUT });
    await page.locator(`tr.image-row[data-id="${id}"] .thumb img`).waitFor();
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was never reloaded');
  });

  it('keeps the counters in step with /api/stats and filters by status', async () => {
    const { body: stats } = await apiJson('/api/stats');
    await page.waitForFunction(
      (completed) => document.querySelector('[data-count="completed"]').textContent === String(completed),
      stats.counts.completed,
      { timeout: 10_000 },
    );
    await page.click('.filter-chip[data-status="completed"]');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tr.image-row')];
      return rows.length > 0 && rows.every((tr) => tr.dataset.status === 'completed');
    });
    await page.click('.filter-chip[data-status="failed"]');
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('tr.image-row')];
      const empty = document.getElementById('empty-state');
      const loaded = rows.length > 0 || (!empty.hidden && empty.textContent === 'No failed images.');
      return loaded && rows.every((tr) => tr.dataset.status === 'failed');
    });
    await page.click('.filter-chip[data-status=""]');
    await waitForRow(SUNSET.name, 'completed');
  });

  it('takes a HEIC photo and an animated GIF: the HEIC comes out JPEG, the GIF stays animated', async () => {
    const heic = { name: `phone-${RUN}.heic`, bytes: await readFile(new URL('../fixtures/formats/rb.heic', import.meta.url)) };
    // Three flat frames, written byte by byte (scripts/postman/fixtures/README.md).
    const gif = { name: `moving-${RUN}.gif`, bytes: await readFile(new URL('../../scripts/postman/fixtures/animated.gif', import.meta.url)) };
    await page.setInputFiles('#file-input', [
      { name: heic.name, mimeType: 'image/heic', buffer: heic.bytes },
      { name: gif.name, mimeType: 'image/gif', buffer: gif.bytes },
    ]);
    const heicRow = await waitForRow(heic.name, 'completed');
    const { body: photo } = await apiJson(`/api/images/${await heicRow.getAttribute('data-id')}`);
    assert.equal(photo.original.content_type, 'image/heic');
    assert.equal(photo.processed.content_type, 'image/jpeg');
    const gifRow = await waitForRow(gif.name, 'completed');
    const { body: moving } = await apiJson(`/api/images/${await gifRow.getAttribute('data-id')}`);
    assert.deepEqual([moving.original.frames, moving.processed.frames, moving.processed.content_type], [3, 3, 'image/gif']);
    // The list plays the animation itself: the cell shows the processed GIF, not the still thumbnail.
    const preview = gifRow.locator('.thumb img');
    await gifRow.locator('.thumb img[data-animated="true"]').waitFor();
    // Its frames (red, green, blue, 200 ms each) follow one another in the cell: pictures of the
    // cell taken a little apart differ (on screen: browsers do not run animations out of view).
    await preview.scrollIntoViewIfNeeded();
    const shown = await preview.evaluate(async (img) => {
      await img.decode();
      return { source: img.dataset.source, size: [img.naturalWidth, img.naturalHeight], box: img.getBoundingClientRect().width };
    });
    assert.deepEqual(shown, { source: moving.links.processed, size: [moving.processed.width, moving.processed.height], box: 48 });
    const frames = new Set();
    for (let i = 0; i < 12 && frames.size < 2; i += 1) {
      frames.add((await preview.screenshot({ animations: 'allow' })).toString('base64'));
      await page.waitForTimeout(90);
    }
    assert.equal(frames.size, 2, 'the cell animates');
    // A still photo keeps its thumbnail.
    await heicRow.locator('.thumb img').waitFor();
    assert.equal(await heicRow.locator('.thumb img').getAttribute('data-source'), photo.links.thumbnail);
    // Asking the system for less motion swaps the animation for the still thumbnail at once.
    await page.emulateMedia({ reducedMotion: 'reduce' });
    await page.waitForFunction(
      ([id, href]) => document.querySelector(`tr.image-row[data-id="${id}"] .thumb img`)?.dataset.source === href,
      [moving.id, moving.links.thumbnail],
    );
    assert.equal(await preview.getAttribute('data-animated'), 'false');
    await page.emulateMedia({ reducedMotion: 'no-preference' });
    await gifRow.locator('.thumb img[data-animated="true"]').waitFor();
  });

  it('compares the original and the result with a slider, from the keyboard', async () => {
    const row = await waitForRow(SUNSET.name, 'completed');
    await row.locator('[data-action="details"]').click();
    await page.locator('#detail-dialog[open]').waitFor();
    await page.click('#detail-modes [data-mode="slider"]');
    assert.equal(await page.isVisible('#detail-side'), false, 'the side-by-side view gives way');
    assert.deepEqual(await page.$$eval('#detail-modes [data-mode]', (b) => b.map((x) => x.getAttribute('aria-pressed'))), ['false', 'true']);
    await page.waitForFunction(() => ['compare-original', 'compare-processed'].every((id) => document.getElementById(id).naturalWidth > 0));
    const clip = () => page.$eval('#compare-processed', (img) => getComputedStyle(img).clipPath);
    assert.equal(await page.$eval('#compare-range', (r) => r.value), '50');
    assert.match(await clip(), /inset\(0px 0px 0px 50%\)/);
    await page.focus('#compare-range');
    await page.keyboard.press('Home');
    for (let i = 0; i < 30; i += 1) await page.keyboard.press('ArrowRight');
    assert.equal(await page.$eval('#compare-range', (r) => r.value), '30');
    assert.match(await clip(), /inset\(0px 0px 0px 30%\)/, 'the result is clipped where the divider is');
    assert.equal(await page.getAttribute('#compare-range', 'aria-valuetext'), '30% original, 70% result');
    const label = await page.$eval('#compare-range', (r) => r.labels.length > 0 && r.getAttribute('aria-label'));
    assert.ok(label, 'the range is labelled');
    // The divider follows a click on the picture too.
    const box = await page.locator('#compare-stage').boundingBox();
    await page.mouse.click(box.x + box.width * 0.8, box.y + box.height / 2);
    assert.ok(Math.abs(Number(await page.$eval('#compare-range', (r) => r.value)) - 80) <= 1);
    await page.screenshot({ path: `${ARTIFACTS}detail-slider.png` });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${ARTIFACTS}detail-slider-phone.png` });
    await page.setViewportSize({ width: 1280, height: 900 });
    // Back to side by side; the choice is remembered for the next image.
    await page.click('#detail-modes [data-mode="side"]');
    assert.equal(await page.isVisible('#detail-compare'), false);
    assert.equal(await page.evaluate(() => localStorage.getItem('image-processor.compare')), 'side');
    await page.keyboard.press('Escape');
  });

  it('opens the detail view: both images, the facts, the pipeline; Escape closes it', async () => {
    const row = await waitForRow(SUNSET.name, 'completed');
    const id = await row.getAttribute('data-id');
    const { body: image } = await apiJson(`/api/images/${id}`);
    await row.locator('[data-action="details"]').click();
    const dialog = page.locator('#detail-dialog[open]');
    await dialog.waitFor();
    assert.equal(await page.textContent('#detail-title'), SUNSET.name);
    // Both pictures load (blob: URLs fetched with the token, if any) at their real sizes.
    await page.waitForFunction(() => ['detail-original', 'detail-processed'].every((id) => document.getElementById(id).naturalWidth > 0));
    const sizes = await page.$$eval('.detail__figure img', (imgs) => imgs.map((img) => [img.naturalWidth, img.naturalHeight]));
    assert.deepEqual(sizes, [[SUNSET.width, SUNSET.height], [image.processed.width, image.processed.height]]);
    const facts = await page.textContent('#detail-facts');
    assert.ok(facts.includes(image.original.sha256), facts);
    assert.ok(facts.includes(image.original.dominant_color), facts);
    assert.ok(facts.includes(image.original.blurhash), facts);
    assert.deepEqual(JSON.parse(await page.textContent('#detail-pipeline')), image.pipeline);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' }).catch(() => {});
    assert.equal(await page.$eval('#detail-dialog', (d) => d.open), false);
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.action), 'details', 'focus returns to the row');
  });

  it('sends a webhook for an upload with a URL, skips a duplicate, and shows the delivery in the detail view', async () => {
    // A receiver in this test process (the server was started with WEBHOOK_ALLOW_PRIVATE=true).
    const received = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', () => {
        received.push({ headers: req.headers, body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const hook = `http://127.0.0.1:${receiver.address().port}/hook`;
      await page.fill('#op-callback_url', hook);
      const dedupe = page.locator('label.switch:has(#op-dedupe) .switch__label');
      await dedupe.click();
      assert.equal(await page.isChecked('#op-dedupe'), true);
      await page.waitForFunction(() => /webhook to 127\.0\.0\.1:\d+ · skip duplicates/.test(document.getElementById('ops-summary').textContent));
      const told = { name: `told-${RUN}.png`, bytes: samplePng(80, 60, [200, 100, 0], [20, 10, 0]) };
      await page.setInputFiles('#file-input', [{ name: told.name, mimeType: 'image/png', buffer: told.bytes }]);
      const row = await waitForRow(told.name, 'completed');
      const id = await row.getAttribute('data-id');
      await page.waitForFunction(async (imageId) => {
        const answer = await (await fetch(`/api/images/${imageId}/deliveries`)).json();
        return answer.deliveries?.[0]?.state === 'delivered';
      }, id);
      // The delivery is recorded once the receiver's answer is back, and the receiver notes the
      // request before answering; still, give this process's event loop a moment to run its
      // handlers (a run saw the row `delivered` with nothing noted yet).
      for (let i = 0; i < 50 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(received.length, 1);
      assert.equal(received[0].body.event, 'image.completed');
      assert.equal(received[0].body.image.id, id);
      assert.match(received[0].headers['webhook-signature'], /^v1,/);
      // The same file again, with "skip duplicates" on: the server answers with the first image.
      const before = await page.$$eval('tr.image-row', (rows) => rows.length);
      await page.setInputFiles('#file-input', [{ name: told.name, mimeType: 'image/png', buffer: told.bytes }]);
      await page.waitForFunction(
        (name) => [...document.querySelectorAll('#upload-list li')].some((li) => li.textContent.includes(name) && li.textContent.includes('Already uploaded')),
        told.name,
        { timeout: 10_000 },
      );
      const { body: listed } = await apiJson('/api/images?limit=200');
      assert.equal(listed.images.filter((image) => image.filename === told.name).length, 1, 'the duplicate was not stored again');
      assert.equal(await page.$$eval('tr.image-row', (rows) => rows.length), before);
      // The detail view lists the delivery.
      await row.locator('[data-action="details"]').click();
      await page.waitForFunction((url) => document.getElementById('detail-deliveries').textContent.includes(`image.completed → ${url}: delivered`), hook);
      await page.keyboard.press('Escape');
    } finally {
      await page.fill('#op-callback_url', '');
      if (await page.isChecked('#op-dedupe')) await page.locator('label.switch:has(#op-dedupe) .switch__label').click();
      receiver.close();
    }
  });

  it('decodes the server\'s BlurHash to the image\'s colour for the row placeholders', async () => {
    const flat = { name: `flat-${RUN}.png`, bytes: encodePng(90, 60, () => [40, 160, 90]) };
    await page.setInputFiles('#file-input', [{ name: flat.name, mimeType: 'image/png', buffer: flat.bytes }]);
    const row = await waitForRow(flat.name, 'completed');
    const { body: image } = await apiJson(`/api/images/${await row.getAttribute('data-id')}`);
    assert.equal(image.original.dominant_color, '#28a05a');
    // The decoder the rows paint with, on the server's hash: a flat image comes back flat.
    const mid = await page.evaluate(async (hash) => {
      const { decodeBlurhash } = await import('/assets/blurhash.js');
      const px = decodeBlurhash(hash, 9, 9);
      const at = (4 * 9 + 4) * 4;
      return [px[at], px[at + 1], px[at + 2]];
    }, image.original.blurhash);
    const want = [40, 160, 90];
    assert.ok(mid.every((v, i) => Math.abs(v - want[i]) <= 12), `decoded ${mid}, expected about ${want}`);
    const canvas = await page.evaluate(async (hash) => {
      const { blurhashCanvas } = await import('/assets/blurhash.js');
      return { width: blurhashCanvas(hash)?.width, bad: blurhashCanvas('not a hash') };
    }, image.original.blurhash);
    assert.deepEqual(canvas, { width: 16, bad: null });
  });

  it('saves the options as a preset, edits its JSON (the server names the bad field), deletes one', async () => {
    await page.fill('#op-width', '64');
    await page.selectOption('#op-format', 'webp');
    await page.click('#save-preset');
    await page.locator('#preset-dialog[open]').waitFor();
    assert.deepEqual(JSON.parse(await page.inputValue('#preset-json')), { width: 64, format: 'webp' }, 'the form\'s options, as pipeline JSON');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'preset-name');
    await page.fill('#preset-name', 'Not A Name');
    await page.click('#preset-form button[type="submit"]');
    assert.match(await page.textContent('#preset-error'), /lower-case/);
    await page.fill('#preset-name', THUMB);
    await page.click('#preset-form button[type="submit"]');
    await page.locator('#preset-dialog[open]').waitFor({ state: 'detached' }).catch(() => {});
    const item = page.locator(`#preset-list li[data-name="${THUMB}"]`);
    await item.waitFor();
    let { status, body } = await apiJson(`/api/presets/${THUMB}`);
    assert.equal(status, 200);
    assert.match(JSON.stringify(body.pipeline), /64/);
    // The upload form offers it as a variant.
    await page.locator(`#variant-choices input[value="${THUMB}"]`).waitFor();

    // Edit: a bad value is refused by the server, whose 400 names the field.
    await item.locator('[data-action="edit-preset"]').click();
    await page.locator('#preset-dialog[open]').waitFor();
    assert.equal(await page.$eval('#preset-name', (input) => input.readOnly), true, 'an edit keeps the name');
    await page.fill('#preset-json', '{"width": -5, "format": "webp"}');
    await page.click('#preset-form button[type="submit"]');
    await page.waitForFunction(() => /width/.test(document.getElementById('preset-error').textContent));
    assert.equal(await page.evaluate(() => document.activeElement.id), 'preset-json');
    await page.fill('#preset-json', '{"width": 48, "format": "webp"}');
    await page.click('#preset-form button[type="submit"]');
    await page.locator('#preset-dialog[open]').waitFor({ state: 'detached' }).catch(() => {});
    ({ body } = await apiJson(`/api/presets/${THUMB}`));
    assert.match(JSON.stringify(body.pipeline), /48/);
    await page.waitForFunction((name) => /48/.test(document.querySelector(`#preset-list li[data-name="${name}"] .preset__summary`)?.textContent || ''), THUMB);

    // A second one, from the card's button, then deleted after a confirmation.
    await page.click('#new-preset');
    await page.fill('#preset-name', SCRATCH);
    await page.click('#preset-form button[type="submit"]');
    const scratch = page.locator(`#preset-list li[data-name="${SCRATCH}"]`);
    await scratch.waitFor();
    page.once('dialog', (dialog) => dialog.accept());
    await scratch.locator('[data-action="delete-preset"]').click();
    await scratch.waitFor({ state: 'detached' });
    assert.equal((await apiJson(`/api/presets/${SCRATCH}`)).status, 404);
    assert.equal(await page.locator(`#variant-choices input[value="${SCRATCH}"]`).count(), 0);
    await page.locator('#presets-title').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${ARTIFACTS}presets.png`, fullPage: true });
    await page.fill('#op-width', '200');
    await page.selectOption('#op-format', '');
  });

  it(`uploads with a variant: the row lists it live, and its link serves the WebP`, async () => {
    await page.check(`#variant-choices input[value="${SMALL}"]`);
    await page.waitForFunction((name) => document.getElementById('ops-summary').textContent.includes(`variants ${name}`), SMALL);
    const framed = { name: `framed-${RUN}.png`, bytes: samplePng(160, 120, [240, 120, 20], [20, 60, 200]) };
    await page.setInputFiles('#file-input', [{ name: framed.name, mimeType: 'image/png', buffer: framed.bytes }]);
    await page.uncheck(`#variant-choices input[value="${SMALL}"]`);
    const row = await waitForRow(framed.name, 'completed');
    const id = await row.getAttribute('data-id');
    const variant = row.locator(`li.variant[data-preset="${SMALL}"]`);
    await variant.waitFor();
    await row.locator(`li.variant[data-preset="${SMALL}"][data-status="completed"]`).waitFor();
    const href = await variant.locator('a.variant__link').getAttribute('href');
    assert.equal(href, `/api/images/${id}/variants/${SMALL}`);
    const res = await fetch(`${BASE_URL}${href}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/webp');
    assert.deepEqual(imageSize(Buffer.from(await res.arrayBuffer())), { format: 'webp', width: 48, height: 36 });
    // The browser decodes the same bytes.
    const decoded = await page.evaluate(async (url) => {
      const bitmap = await createImageBitmap(await (await fetch(url)).blob());
      return [bitmap.width, bitmap.height];
    }, href);
    assert.deepEqual(decoded, [48, 36]);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was never reloaded');
  });

  it('picks a preset as the main pipeline: the upload sends its pipeline, the result is a 40 px PNG', async () => {
    const picker = page.locator('#op-preset');
    await picker.locator(`option[value="${MAIN}"]`).waitFor({ state: 'attached' });
    // Labelled, and reached from the keyboard: the first control after the options' summary.
    assert.equal(await page.evaluate(() => document.getElementById('op-preset').labels[0]?.querySelector('.field__label').textContent), 'Pipeline');
    await page.focus('#ops-details > summary');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'op-preset');
    assert.equal(await page.inputValue('#op-width'), '200', 'the options as the earlier tests left them');

    // AUTO: the hint says the format is kept, the summary too.
    await page.selectOption('#op-preset', AUTO);
    await page.waitForFunction((name) => document.getElementById('ops-summary').textContent.includes(`preset ${name}`), AUTO);
    assert.match(await page.textContent('#preset-choice-hint'), /auto/);
    assert.match(await page.textContent('#ops-summary'), /format: kept/);

    await page.selectOption('#op-preset', MAIN);
    await page.waitForFunction((name) => document.getElementById('ops-summary').textContent.includes(`preset ${name}`), MAIN);
    const summary = await page.textContent('#ops-summary');
    assert.doesNotMatch(summary, /width 200px/, `the options are not used: ${summary}`);
    assert.doesNotMatch(await page.textContent('#preset-choice-hint'), /auto/);
    assert.equal(await page.$eval('#op-width', (input) => input.disabled), true, 'the operation inputs are disabled');
    assert.equal(await page.$eval('#op-grayscale', (input) => input.disabled), true);
    assert.equal(await page.$eval('#op-priority', (input) => input.disabled), false, 'the upload\'s own fields stay');

    // What the page puts in the multipart form, and what the request carried.
    await page.evaluate(() => {
      window.__appended = [];
      const append = FormData.prototype.append;
      window.__append = append;
      FormData.prototype.append = function (name, value, ...rest) {
        if (typeof value === 'string') window.__appended.push([name, value]);
        return append.call(this, name, value, ...rest);
      };
    });
    const bodies = [];
    const onRequest = (req) => {
      if (req.method() === 'POST' && new URL(req.url()).pathname === '/api/images') bodies.push(req.postData() || '');
    };
    page.on('request', onRequest);
    await page.fill('#op-priority', '5');
    const picked = { name: `preset-main-${RUN}.png`, bytes: samplePng(160, 120, [30, 160, 90], [200, 200, 40]) };
    await page.setInputFiles('#file-input', [{ name: picked.name, mimeType: 'image/png', buffer: picked.bytes }]);
    const row = await waitForRow(picked.name, 'completed');
    page.off('request', onRequest);
    await page.fill('#op-priority', '');

    const appended = await page.evaluate(() => window.__appended);
    const sent = Object.fromEntries(appended);
    const stored = (await apiJson(`/api/presets/${MAIN}`)).body.pipeline;
    assert.deepEqual(JSON.parse(sent.pipeline), stored, 'the preset\'s pipeline, as the server keeps it, in JSON');
    assert.equal(sent.priority, '5', 'the upload\'s own fields still go');
    assert.equal(sent.width, undefined, `no operation fields beside it: ${JSON.stringify(appended)}`);
    assert.equal(bodies.length, 1, 'one upload request');
    // Chromium often leaves a body with a file out of postData(): checked when it is there.
    if (bodies[0]) assert.match(bodies[0], /name="pipeline"\r\n\r\n\{/, 'the request carried a pipeline field (JSON)');

    const dims = await row.locator('td[data-label="Dimensions"]').textContent();
    assert.equal(dims.replace(/\s+/g, ' ').trim(), '160×120 → 40×30');
    const id = await row.getAttribute('data-id');
    const { status, body } = await apiJson(`/api/images/${id}`);
    assert.equal(status, 200);
    // The server took the pipeline field: the image's pipeline is the preset's, not the form's width 200.
    assert.match(JSON.stringify(body.pipeline), /"width":40\b/);
    assert.doesNotMatch(JSON.stringify(body.pipeline), /200/);
    const res = await fetch(`${BASE_URL}${body.links.processed}`);
    assert.equal(res.status, 200);
    assert.deepEqual(imageSize(Buffer.from(await res.arrayBuffer())), { format: 'png', width: 40, height: 30 });

    // AUTO's `format: auto` goes: the result keeps the input's format.
    await page.selectOption('#op-preset', AUTO);
    await page.evaluate(() => {
      window.__appended = [];
    });
    const kept = { name: `preset-auto-${RUN}.png`, bytes: samplePng(120, 90, [90, 30, 160], [20, 200, 200]) };
    await page.setInputFiles('#file-input', [{ name: kept.name, mimeType: 'image/png', buffer: kept.bytes }]);
    const autoRow = await waitForRow(kept.name, 'completed');
    const autoSent = Object.fromEntries(await page.evaluate(() => window.__appended));
    const autoStored = (await apiJson(`/api/presets/${AUTO}`)).body.pipeline;
    assert.equal(autoStored.format, 'auto', 'the server keeps format auto');
    const { format: _auto, ...withoutFormat } = autoStored;
    assert.deepEqual(JSON.parse(autoSent.pipeline), withoutFormat, 'no format in the main pipeline');
    const autoImage = (await apiJson(`/api/images/${await autoRow.getAttribute('data-id')}`)).body;
    const autoRes = await fetch(`${BASE_URL}${autoImage.links.processed}`);
    const autoSize = imageSize(Buffer.from(await autoRes.arrayBuffer()));
    assert.deepEqual([autoSize.format, autoSize.width], ['png', 30], 'the input\'s format, 30 px wide');
    await page.evaluate(() => {
      FormData.prototype.append = window.__append;
    });

    // The choice survives a reload of the list; the chosen preset deleted, back to the options.
    await page.selectOption('#op-preset', MAIN);
    const scratchName = `extra-${RUN}`;
    await page.click('#new-preset');
    await page.locator('#preset-dialog[open]').waitFor();
    assert.deepEqual(JSON.parse(await page.inputValue('#preset-json')), stored, 'a new preset starts from the chosen one');
    await page.fill('#preset-name', scratchName);
    await page.click('#preset-form button[type="submit"]');
    await page.locator(`#preset-list li[data-name="${scratchName}"]`).waitFor();
    assert.equal(await page.inputValue('#op-preset'), MAIN, 'still chosen after the list reloaded');
    page.once('dialog', (dialog) => dialog.accept());
    await page.locator(`#preset-list li[data-name="${scratchName}"] [data-action="delete-preset"]`).click();
    await page.locator(`#preset-list li[data-name="${scratchName}"]`).waitFor({ state: 'detached' });
    page.once('dialog', (dialog) => dialog.accept());
    await page.locator(`#preset-list li[data-name="${MAIN}"] [data-action="delete-preset"]`).click();
    await page.locator(`#preset-list li[data-name="${MAIN}"]`).waitFor({ state: 'detached' });
    assert.equal(await page.inputValue('#op-preset'), '', 'back to "these options"');
    assert.equal(await page.$eval('#op-width', (input) => input.disabled), false, 'the inputs are back');
    assert.match(await page.textContent('#ops-summary'), /width 200px/);
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was never reloaded');
  });

  it('follows a variant queued by SQL live, pending to completed, in the row', { skip: PSQL_URL ? false : 'PSQL_URL is not set' }, async () => {
    const id = await rowLocator(SUNSET.name).getAttribute('data-id');
    // Every status the row shows for the variant, in order.
    await page.evaluate(([imageId, preset]) => {
      window.__variantStates = [];
      const note = () => {
        const li = document.querySelector(`tr.image-row[data-id="${imageId}"] li.variant[data-preset="${preset}"]`);
        const state = li?.dataset.status;
        if (state && window.__variantStates.at(-1) !== state) window.__variantStates.push(state);
      };
      new MutationObserver(note).observe(document.getElementById('image-rows'), { subtree: true, childList: true, attributes: true });
    }, [id, SMALL]);
    await psql(PSQL_URL, `INSERT INTO image_variants (image_id, preset) VALUES ('${id}', '${SMALL}')`);
    await page.waitForSelector(`tr.image-row[data-id="${id}"] li.variant[data-preset="${SMALL}"][data-status="completed"]`, { timeout: LIVE_TIMEOUT });
    const states = await page.evaluate(() => window.__variantStates);
    assert.equal(states.at(-1), 'completed', states.join(' → '));
    assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the page was never reloaded');
  });

  it('copies a signed URL of a variant, which serves the image with no token', async () => {
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE_URL });
    const row = rowLocator(`framed-${RUN}.png`);
    const id = await row.getAttribute('data-id');
    await row.locator('[data-action="details"]').click();
    await page.locator('#detail-dialog[open]').waitFor();
    const item = page.locator(`#detail-variants li[data-preset="${SMALL}"]`);
    await item.locator('[data-action="download-variant"]').waitFor();
    assert.match(await item.textContent(), /image\/webp/);
    await item.locator('[data-action="copy-signed"]').click();
    const link = item.locator('a.detail-variant__signed');
    await link.waitFor();
    const url = await link.getAttribute('href');
    assert.match(url, new RegExp(`^${BASE_URL}/v/[A-Za-z0-9_-]{43}/${id}/${SMALL}$`));
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), url, 'the URL is on the clipboard');
    assert.match(await item.locator('.detail-variant__result').textContent(), /^Copied:/);
    const res = await fetch(url); // no Authorization header
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/webp');
    assert.match(res.headers.get('cache-control') || '', /immutable/);
    assert.equal(imageSize(Buffer.from(await res.arrayBuffer())).width, 48);
    await item.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${ARTIFACTS}detail-variants.png` });
    await page.setViewportSize({ width: 390, height: 844 });
    await item.scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${ARTIFACTS}detail-variants-phone.png` });
    await page.setViewportSize({ width: 1280, height: 900 });

    // A server without URL_SIGNING_KEY answers 404: its words are shown (played here by a route).
    await page.route('**/signed-url', (route) =>
      route.fulfill({ status: 404, contentType: 'application/json', body: JSON.stringify({ error: { code: 'not_found', message: 'URL signing is not configured on this server.' } }) }));
    try {
      await item.locator('[data-action="copy-signed"]').click();
      await page.waitForFunction(
        (preset) => /No signed URL: URL signing is not configured/.test(document.querySelector(`#detail-variants li[data-preset="${preset}"] .detail-variant__result`).textContent),
        SMALL,
      );
    } finally {
      await page.unroute('**/signed-url');
    }
    await page.keyboard.press('Escape');
  });

  it('shows the queue and the last hour as a live chart', async () => {
    const { body: stats } = await apiJson('/api/stats');
    const done = stats.history.reduce((n, m) => n + m.completed, 0);
    assert.ok(done > 0, 'this run completed images');
    await page.waitForFunction(
      (n) => Number(document.getElementById('dash-hour').textContent) >= n && document.querySelectorAll('#dash-chart .chart__minute').length === 60,
      done,
      { timeout: 10_000 },
    );
    const before = Number(await page.textContent('#dash-hour'));
    // One more upload: the chart and the figure follow over the event stream, no reload.
    const extra = { name: `chart-${RUN}.png`, bytes: samplePng(64, 48, [0, 0, 0], [255, 255, 255]) };
    await page.setInputFiles('#file-input', [{ name: extra.name, mimeType: 'image/png', buffer: extra.bytes }]);
    await waitForRow(extra.name, 'completed');
    await page.waitForFunction((n) => Number(document.getElementById('dash-hour').textContent) > n, before, { timeout: 15_000 });
    const last = await page.$$eval('#dash-chart .chart__minute', (g) => g.slice(-2).reduce((n, el) => n + Number(el.dataset.completed), 0));
    assert.ok(last >= 1, `the last minutes hold the new completion (${last})`);
    assert.match(await page.getAttribute('#dash-chart', 'aria-label'), /completed/);
  });

  it('looks right on a desktop and a phone (screenshots)', async () => {
    // The last snackbar would float over the counters in a full-page picture: let it go first.
    await page.evaluate(() => {
      document.getElementById('snackbar').hidden = true;
      window.scrollTo(0, 0);
    });
    await page.screenshot({ path: `${ARTIFACTS}final.png`, fullPage: true });

    const phone = await browser.context.newPage();
    phone.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
    try {
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.goto(`${BASE_URL}/`);
      await phone.waitForSelector('tr.image-row[data-status="completed"] .thumb img');
      assert.equal(await phone.$eval('#ops-details', (d) => d.open), false, 'options start folded on a phone');
      const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling on a phone (${overflow}px too wide)`);
      await phone.screenshot({ path: `${ARTIFACTS}final-phone.png`, fullPage: true });
    } finally {
      await phone.close();
    }
  });

  it('pages through the list with "Load more", newest first', async () => {
    const { body: listed } = await apiJson('/api/images?limit=200');
    const expected = listed.images.map((image) => image.id).slice(0, 6);
    const listPage = await browser.context.newPage();
    listPage.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
    try {
      await listPage.goto(`${BASE_URL}/?limit=1`); // one row per page
      await listPage.waitForSelector('tr.image-row');
      const more = listPage.locator('#load-more');
      for (let clicks = 0; clicks < expected.length && (await more.isVisible()); clicks += 1) {
        await more.click();
        await listPage.waitForFunction(() => !document.getElementById('load-more').disabled);
      }
      const shown = await listPage.$$eval('tr.image-row', (rows) => rows.map((tr) => tr.dataset.id));
      assert.deepEqual(shown.slice(0, expected.length), expected);
      if (listed.images.length < expected.length) assert.equal(await more.isVisible(), false, 'the button goes once all is shown');
    } finally {
      await listPage.close();
    }
  });

  it('asks for a token when the API answers 401, then sends it as a Bearer header', async () => {
    // Plays a server started with API_TOKEN: every /api call without the right token gets a 401.
    const TOKEN = 'test-token-123';
    const tokenPage = await browser.context.newPage();
    tokenPage.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (${msg.location().url || 'token page'})`);
    });
    tokenPage.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
    let eventStreamUrl = '';
    const authorized = [];
    await tokenPage.route(/\/api\//, (route) => {
      const req = route.request();
      const url = new URL(req.url());
      const ok = url.pathname === '/api/events' ? url.searchParams.get('access_token') === TOKEN : req.headers().authorization === `Bearer ${TOKEN}`;
      if (url.pathname === '/api/events') eventStreamUrl = req.url();
      if (!ok) {
        return route.fulfill({
          status: 401,
          contentType: 'application/json',
          body: JSON.stringify({ error: { code: 'unauthorized', message: 'A valid API token is required.' } }),
        });
      }
      authorized.push(url.pathname);
      return route.continue();
    });
    try {
      await tokenPage.goto(`${BASE_URL}/`);
      const dialog = tokenPage.locator('#token-dialog[open]');
      await dialog.waitFor();
      await tokenPage.fill('#token-input', TOKEN);
      await tokenPage.keyboard.press('Enter');
      await dialog.waitFor({ state: 'detached' }).catch(() => {});
      await tokenPage.waitForSelector('tr.image-row[data-status="completed"] .thumb img');
      const src = await tokenPage.locator('tr.image-row .thumb img').first().getAttribute('src');
      assert.match(src, /^blob:/, 'thumbnails are fetched with the header, shown as blob: URLs');
      await tokenPage.waitForSelector('#live-indicator[data-state="live"]');
      assert.match(eventStreamUrl, /access_token=test-token-123/);
      assert.ok(authorized.includes('/api/images') && authorized.includes('/api/stats'));
      assert.equal(await tokenPage.evaluate(() => localStorage.getItem('image-processor.token')), TOKEN);
    } finally {
      await tokenPage.evaluate(() => localStorage.clear()).catch(() => {});
      await tokenPage.close();
    }
  });

  it('switches to Português and back without a reload; the choice survives a reload', async () => {
    const langPage = await browser.context.newPage();
    langPage.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
    langPage.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(`${msg.text()} (${msg.location().url || 'language page'})`);
    });
    const texts = () =>
      langPage.evaluate(() => ({
        lang: document.documentElement.lang,
        title: document.querySelector('.app-bar__title').textContent,
        documentTitle: document.title,
        upload: document.getElementById('upload-title').textContent,
        pick: document.getElementById('pick-button').textContent,
        live: document.getElementById('live-indicator').textContent,
        filter: document.querySelector('.filter-chip[data-status="failed"] [data-i18n]').textContent,
        header: document.querySelector('#image-table th[data-i18n="table.dimensions"]').textContent,
        status: document.querySelector('tr.image-row[data-status="completed"] .status-chip').textContent.trim(),
        deleteLabel: document.querySelector('tr.image-row [data-action="delete"]').getAttribute('aria-label'),
        summary: document.getElementById('ops-summary').textContent,
        switchLabel: document.getElementById('language-select').getAttribute('aria-label'),
      }));
    const portuguese = (got) => {
      assert.equal(got.lang, 'pt-BR');
      assert.equal(got.title, 'Processador de imagens');
      assert.equal(got.documentTitle, 'Processador de imagens');
      assert.equal(got.upload, 'Enviar imagens');
      assert.equal(got.pick, 'Escolher arquivos');
      assert.equal(got.live, 'Ao vivo');
      assert.equal(got.filter, 'Com falha');
      assert.equal(got.header, 'Dimensões');
      assert.match(got.status, /^Concluída( · tentativa \d+)?$/);
      assert.match(got.deleteLabel, /^Excluir /);
      assert.equal(got.summary, 'Nenhuma opção definida: vale o pipeline padrão do servidor.');
      assert.equal(got.switchLabel, 'Idioma');
    };
    try {
      await langPage.goto(`${BASE_URL}/`);
      await langPage.waitForSelector('#live-indicator[data-state="live"]');
      await langPage.waitForSelector('tr.image-row[data-status="completed"]');
      const english = await texts();
      assert.equal(english.lang, 'en');
      assert.equal(english.upload, 'Upload images');
      assert.match(english.status, /^Completed/);
      await langPage.evaluate(() => {
        window.__sameDocument = true;
      });

      await langPage.selectOption('#language-select', 'pt-BR');
      await langPage.waitForFunction(() => document.documentElement.lang === 'pt-BR');
      portuguese(await texts());
      assert.equal(await langPage.evaluate(() => window.__sameDocument), true, 'switching did not reload the page');
      assert.equal(await langPage.evaluate(() => localStorage.getItem('image-processor.language')), 'pt-BR');
      await langPage.screenshot({ path: `${ARTIFACTS}pt-BR.png`, fullPage: true });

      await langPage.reload();
      await langPage.waitForSelector('#live-indicator[data-state="live"]');
      await langPage.waitForSelector('tr.image-row[data-status="completed"]');
      portuguese(await texts());
      assert.equal(await langPage.$eval('#language-select', (select) => select.value), 'pt-BR');
      // A message made in the browser is in Portuguese too, and follows the switch back.
      await langPage.setInputFiles('#file-input', [{ name: 'leia-me.txt', mimeType: 'text/plain', buffer: Buffer.from('olá') }]);
      const refused = langPage.locator('.upload-item[data-state="error"][data-name="leia-me.txt"] .upload-item__status');
      assert.match(await refused.textContent(), /^Não é uma imagem \(text\/plain\)/);

      // Back to English, from the keyboard this time.
      await langPage.focus('#language-select');
      await langPage.keyboard.press('ArrowUp');
      await langPage.waitForFunction(() => document.documentElement.lang === 'en');
      assert.deepEqual(await texts(), english);
      assert.match(await refused.textContent(), /^Not an image \(text\/plain\)/);
      assert.equal(await langPage.evaluate(() => localStorage.getItem('image-processor.language')), 'en');
    } finally {
      await langPage.evaluate(() => localStorage.removeItem('image-processor.language')).catch(() => {});
      await langPage.close();
    }
  });

  it('starts in Portuguese in a browser set to pt-BR, with no saved choice', async () => {
    const ptBrowser = await launchBrowser({ locale: 'pt-BR' });
    try {
      const ptPage = ptBrowser.context.pages()[0] || (await ptBrowser.context.newPage());
      ptPage.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
      await ptPage.goto(`${BASE_URL}/`);
      await ptPage.waitForSelector('#live-indicator[data-state="live"]');
      await ptPage.waitForSelector('tr.image-row[data-status="completed"]');
      const seen = await ptPage.evaluate(() => ({
        languages: navigator.languages,
        saved: localStorage.getItem('image-processor.language'),
        lang: document.documentElement.lang,
        chosen: document.getElementById('language-select').value,
        pick: document.getElementById('pick-button').textContent,
        status: document.querySelector('tr.image-row[data-status="completed"] .status-chip').textContent.trim(),
        header: document.querySelector('#image-table th[data-i18n="table.size"]').textContent,
      }));
      assert.equal(seen.saved, null, 'no saved choice');
      assert.equal(seen.lang, 'pt-BR', `navigator.languages: ${seen.languages}`);
      assert.equal(seen.chosen, 'pt-BR');
      assert.equal(seen.pick, 'Escolher arquivos');
      assert.match(seen.status, /^Concluída/);
      assert.equal(seen.header, 'Tamanho');
      // Longer words, same phone: still no sideways scrolling.
      await ptPage.setViewportSize({ width: 390, height: 844 });
      const overflow = await ptPage.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling on a phone in Portuguese (${overflow}px too wide)`);
      await ptPage.screenshot({ path: `${ARTIFACTS}pt-BR-phone.png`, fullPage: true });
    } finally {
      await ptBrowser.close();
    }
  });

  it('has no serious or critical accessibility violations (axe-core), with the detail view open too', async () => {
    // A browser of its own that lets axe-core's script in: the page's CSP (rightly) refuses it.
    const scan = await launchBrowser({ bypassCSP: true });
    try {
      const axePage = scan.context.pages()[0] || (await scan.context.newPage());
      await axePage.goto(`${BASE_URL}/`);
      await axePage.waitForSelector('tr.image-row[data-status="completed"] .thumb img');
      await axePage.waitForSelector('#live-indicator[data-state="live"]');
      await axePage.addScriptTag({ path: fileURLToPath(new URL('./node_modules/axe-core/axe.min.js', import.meta.url)) });
      const run = () =>
        axePage.evaluate(async () => {
          const result = await window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } });
          return result.violations
            .filter((v) => v.impact === 'serious' || v.impact === 'critical')
            .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')} (${(n.failureSummary || '').replace(/\s+/g, ' ')})`).join(', ')}`);
        });
      assert.deepEqual(await run(), [], 'the page');
      // A row with variants, when the server has presets: the detail view then lists them too.
      const withVariants = axePage.locator('tr.image-row[data-status="completed"]:has(li.variant) [data-action="details"]');
      await ((await withVariants.count()) ? withVariants : axePage.locator('tr.image-row[data-status="completed"] [data-action="details"]')).first().click();
      await axePage.waitForSelector('#detail-dialog[open]');
      await axePage.waitForFunction(() => document.getElementById('detail-original').naturalWidth > 0);
      assert.deepEqual(await run(), [], 'the detail view');
      // The same in Portuguese (longer words, another <html lang>).
      await axePage.keyboard.press('Escape');
      await axePage.selectOption('#language-select', 'pt-BR');
      await axePage.waitForFunction(() => document.documentElement.lang === 'pt-BR');
      assert.deepEqual(await run(), [], 'the page in Portuguese');
      await axePage.locator('tr.image-row[data-status="completed"] [data-action="details"]').first().click();
      await axePage.waitForSelector('#detail-dialog[open]');
      assert.deepEqual(await run(), [], 'the detail view in Portuguese');
      await axePage.screenshot({ path: `${ARTIFACTS}pt-BR-detail.png` });
    } finally {
      await scan.close();
    }
  });

  it('logged no console errors', () => {
    const expected = EXPECTED_CONSOLE;
    const raced = (text) => [...deletedIds].some((id) => text.includes('status of 404') && text.endsWith(`/api/images/${id})`));
    const unexpected = consoleErrors.filter((text) => !expected.some((pattern) => pattern.test(text)) && !raced(text));
    assert.deepEqual(unexpected, []);
  });
});
