/**
 * The headless-Chromium helper itself (test/chromium.ts): what a browser test relies on it
 * to see — text, images that loaded and did not, console errors, requests — on pages
 * written here, in a real Chromium.
 */
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { pathToFileURL } from 'url';
import { PNG } from 'pngjs';
import { Chromium } from './chromium';
import { tmpDir } from './helpers';

let browser: Chromium;
const dir = tmpDir('elbo-chromium-test-');

before(async () => {
  browser = await Chromium.launch();
});
after(async () => {
  const pid = browser?.pid;
  await browser?.close();
  // stopped by PID: the process is gone
  if (pid) assert.throws(() => process.kill(pid, 0), /ESRCH/);
});

function page(name: string, html: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, html);
  return pathToFileURL(file).href;
}

test('chromium: a good page: text, a loaded image, no console errors, a screenshot of the page', async () => {
  const png = new PNG({ width: 20, height: 10 });
  png.data.fill(200);
  fs.writeFileSync(path.join(dir, 'a.png'), PNG.sync.write(png));
  const r = await browser.render(page('good.html', '<!doctype html><title>Good</title><h1>Hello report</h1><img src="a.png" alt="grid">'));
  assert.equal(r.title, 'Good');
  assert.match(r.text, /Hello report/);
  assert.deepEqual(
    r.images.map((i) => [path.basename(i.src), i.loaded, i.width, i.height]),
    [['a.png', true, 20, 10]],
  );
  assert.deepEqual(r.consoleErrors, []);
  assert.ok(
    r.requests.every((u) => u.startsWith('file:')),
    r.requests.join(' '),
  );
  const shot = PNG.sync.read(r.screenshotPng);
  assert.equal(shot.width, 1280);
  assert.ok(shot.height > 50);
});

test('chromium: a missing image, a script error and a network request are all seen', async () => {
  const r = await browser.render(
    page(
      'bad.html',
      '<!doctype html><title>Bad</title><p>x</p><img src="missing.png"><script>console.error("boom from console"); undefinedFunction();</script>' +
        '<img src="http://127.0.0.1:9/none.png">',
    ),
  );
  assert.deepEqual(
    r.images.map((i) => i.loaded),
    [false, false],
  );
  assert.ok(
    r.consoleErrors.some((e) => /boom from console/.test(e)),
    r.consoleErrors.join('\n'),
  );
  assert.ok(
    r.consoleErrors.some((e) => /undefinedFunction/.test(e)),
    r.consoleErrors.join('\n'),
  );
  assert.ok(
    r.requests.some((u) => u.startsWith('http://127.0.0.1:9/')),
    r.requests.join(' '),
  );
});

test('chromium: waitFor waits for a page that renders with a script', async () => {
  const r = await browser.render(
    page(
      'late.html',
      '<!doctype html><body><script>setTimeout(() => { document.body.textContent = "rendered late"; window.ready = true; }, 300)</script>',
    ),
    {
      waitFor: 'window.ready === true',
    },
  );
  assert.match(r.text, /rendered late/);
});
