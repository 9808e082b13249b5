// The web chat page of `edgellm serve` (web/, docs/serving.md) end to end: the real server, Debian's headless
// chromium driven by playwright-core. Run by scripts/browser_test.sh (`node --test tests/browser/`).
//
// Environment: EDGELLM_BIN (default build/edgellm), EDGELLM_ARTIFACTS_DIR (default build/test-artifacts: the
// screenshots), CHROMIUM (default /usr/bin/chromium). Relative paths are from the project root.
//
// Two servers: one with qwen2-tiny and qwen3-tiny and no keys, one with `--api-key sekret`. Both bind port 0
// and are stopped (SIGTERM, then SIGKILL) whatever happens. Replies that must have an exact shape (hostile
// markup, thinking, errors) come from page.route(); everything else from the real models.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const kRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const kBin = path.resolve(kRoot, process.env.EDGELLM_BIN || 'build/edgellm');
const kArtifacts = path.resolve(kRoot, process.env.EDGELLM_ARTIFACTS_DIR || 'build/test-artifacts');
const kModels = path.join(kRoot, 'tests', 'models');
// The network of the test machines is closed: these flags keep chromium from trying to reach Google.
const kChromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const kWait = 10_000;  // ms, for any single condition

const servers = new Set();
// A crash of this process must not leave a server behind either.
process.on('exit', () => {
  for (const s of servers) s.proc.kill('SIGKILL');
});

// Starts `edgellm serve ARGS` on a free loopback port; resolves once /health answers 200.
async function startServer(args) {
  const proc = spawn(kBin, ['serve', ...args, '--host', '127.0.0.1', '--port', '0'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const server = { proc, url: '', log: [] };
  servers.add(server);
  server.url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no "listening on" line within 30 s:\n' + server.log.join(''))),
      30_000);
    let pending = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (chunk) => {
      server.log.push(chunk);
      pending += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(pending);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${kBin}: ${err.message} (set EDGELLM_BIN)`));
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`edgellm serve exited (${code}):\n` + server.log.join('')));
    });
  });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(server.url + '/health')).status === 200) return server;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) throw new Error('the server was not ready in 60 s:\n' + server.log.join(''));
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopServer(server) {
  if (!server || !servers.has(server)) return;
  servers.delete(server);
  if (server.proc.exitCode !== null || server.proc.signalCode !== null) return;
  const exited = new Promise((resolve) => server.proc.once('exit', resolve));
  server.proc.kill('SIGTERM');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// A page on a fresh context (its own localStorage) that records every request and console error.
async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.setDefaultTimeout(kWait);
  const seen = { requests: [], errors: [], chats: [] };
  context.on('request', (req) => {
    seen.requests.push(req.url());
    if (req.url().endsWith('/v1/chat/completions')) seen.chats.push(req);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.errors.push(msg.text());
  });
  page.on('pageerror', (err) => seen.errors.push(String(err)));
  await page.goto(url + '/');
  return { context, page, seen };
}

async function modelIds(page) {
  return page.locator('#model option').evaluateAll((options) => options.map((o) => o.value));
}

async function waitForModels(page, count) {
  await page.waitForFunction((n) => document.querySelectorAll('#model option[value]:not([value=""])').length === n,
    count, { timeout: kWait });
}

async function sendMessage(page, message) {
  await page.locator('#prompt').fill(message);
  await page.locator('#prompt').press('Enter');
}

// Waits for the n-th reply (1-based) to end; returns its turn.
async function replyDone(page, n) {
  await page.waitForFunction((i) => {
    const turn = document.querySelectorAll('.turn-assistant')[i];
    return turn && turn.dataset.state === 'done';
  }, n - 1, { timeout: 20_000 });
  return page.locator('.turn-assistant').nth(n - 1);
}

// An OpenAI chat stream as server-sent events, one chunk per element of `deltas`.
function sseBody(deltas, finishReason = 'stop', completionTokens = deltas.length) {
  const base = { id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1, model: 'qwen2-tiny' };
  const events = [{ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }];
  for (const delta of deltas) events.push({ ...base, choices: [{ index: 0, delta, finish_reason: null }] });
  events.push({ ...base, choices: [{ index: 0, delta: {}, finish_reason: finishReason }] });
  events.push({ ...base, choices: [], usage: { prompt_tokens: 9, completion_tokens: completionTokens,
    total_tokens: 9 + completionTokens } });
  return events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
}

function routeSse(page, body) {
  return page.route('**/v1/chat/completions', (route) => route.fulfill({
    status: 200, headers: { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' }, body,
  }));
}

describe('web chat page', { timeout: 90_000 }, () => {
  let server;
  let keyServer;
  let browser;

  before(async () => {
    mkdirSync(kArtifacts, { recursive: true });
    // All three at once; whatever started is kept for after() even when another part failed.
    const started = await Promise.allSettled([
      startServer(['-m', path.join(kModels, 'qwen2-tiny'), '-m', path.join(kModels, 'qwen3-tiny'), '--parallel', '2']),
      startServer(['-m', path.join(kModels, 'qwen2-tiny'), '--alias', 'tiny', '--api-key', 'sekret']),
      chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: kChromiumArgs }),
    ]);
    [server, keyServer, browser] = started.map((s) => s.value);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
  });

  after(async () => {
    await Promise.allSettled([browser && browser.close(), ...[...servers].map(stopServer)]);
  });

  test('the files are served with their type, no-cache, an ETag, nosniff and the CSP', async () => {
    for (const [route, type] of [['/', 'text/html'], ['/web/app.js', 'text/javascript'],
      ['/web/style.css', 'text/css']]) {
      const resp = await fetch(server.url + route);
      assert.equal(resp.status, 200, route);
      assert.match(resp.headers.get('content-type'), new RegExp('^' + type), route);
      assert.equal(resp.headers.get('cache-control'), 'no-cache', route);
      assert.equal(resp.headers.get('x-content-type-options'), 'nosniff', route);
      assert.match(resp.headers.get('content-security-policy'), /default-src 'self'; script-src 'self'/, route);
      const etag = resp.headers.get('etag');
      assert.match(etag, /^"[0-9a-f]{16}"$/, route);
      const again = await fetch(server.url + route, { headers: { 'If-None-Match': etag } });
      assert.equal(again.status, 304, route);
    }
    // The page is static: it needs no key even when the API does.
    assert.equal((await fetch(keyServer.url + '/')).status, 200);
    assert.equal((await fetch(keyServer.url + '/v1/models')).status, 401);
  });

  test('(a) loads from its own server only, without console errors; the picker lists the models', async () => {
    const { context, page, seen } = await openPage(browser, server.url);
    try {
      await waitForModels(page, 2);
      assert.deepEqual((await modelIds(page)).sort(), ['qwen2-tiny', 'qwen3-tiny']);
      await page.waitForLoadState('networkidle');
      const foreign = seen.requests.filter((u) => !u.startsWith(server.url + '/') && !u.startsWith('data:'));
      assert.deepEqual(foreign, [], 'requests that left the server');
      assert.ok(seen.requests.includes(server.url + '/web/app.js'));
      assert.deepEqual(seen.errors, []);
    } finally {
      await context.close();
    }
  });

  test('(b) streams a reply with tokens/s; a second message sends the whole conversation', async () => {
    const { context, page, seen } = await openPage(browser, server.url);
    try {
      await waitForModels(page, 2);
      await page.locator('#model').selectOption('qwen2-tiny');
      await page.locator('.settings summary').click();
      await page.locator('#max-tokens').fill('24');
      await page.locator('#temperature').fill('0');
      await page.locator('.settings summary').click();
      await sendMessage(page, 'Tell me about the river.');
      const first = await replyDone(page, 1);
      assert.match(await first.locator('.meta-figures').textContent(), /^\d+ tokens? · [\d.]+ tokens\/s$/);
      assert.ok((await first.locator('.answer').textContent()).length > 0, 'an answer');
      await sendMessage(page, 'And then?');
      const second = await replyDone(page, 2);
      assert.match(await second.locator('.meta-figures').textContent(), /tokens\/s/);
      assert.equal(seen.chats.length, 2);
      const body = JSON.parse(seen.chats[1].postData());
      assert.equal(body.model, 'qwen2-tiny');
      assert.equal(body.stream, true);
      assert.deepEqual(body.stream_options, { include_usage: true });
      assert.equal(body.max_tokens, 24);
      assert.deepEqual(body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
      assert.equal(body.messages[0].content, 'Tell me about the river.');
      assert.equal(body.messages[1].content, await first.locator('.answer').textContent());
      assert.equal(body.messages[2].content, 'And then?');
      assert.deepEqual(seen.errors, []);
      await page.screenshot({ path: path.join(kArtifacts, 'chat_page.png') });
    } finally {
      await context.close();
    }
  });

  test('(c) stop ends the stream, keeps the partial reply, and the page goes on', async () => {
    const { context, page, seen } = await openPage(browser, server.url);
    try {
      await waitForModels(page, 2);
      await page.locator('#model').selectOption('qwen2-tiny');
      // A reply that cannot end by itself (ignore_eos, 900 tokens), arriving slowly: the browser's download
      // is throttled to 3 KB/s (about 10 chunks a second), so stop always comes mid-stream.
      await page.route('**/v1/chat/completions', (route) => {
        const body = JSON.parse(route.request().postData());
        route.continue({ postData: JSON.stringify({ ...body, max_tokens: 900, ignore_eos: true }) });
      });
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions',
        { offline: false, latency: 0, downloadThroughput: 3000, uploadThroughput: -1 });
      await sendMessage(page, 'Write a very long story.');
      const turn = page.locator('.turn-assistant').first();
      await page.waitForFunction(() => {
        const answer = document.querySelector('.turn-assistant .answer');
        return answer && answer.textContent.length > 0;
      }, null, { timeout: kWait });
      await page.locator('#stop').click();
      await replyDone(page, 1);
      const figures = await turn.locator('.meta-figures').textContent();
      const tokens = Number(/^(\d+) token/.exec(figures)[1]);
      assert.ok(tokens > 0 && tokens < 900, `a partial reply: ${figures}`);
      assert.match(await turn.locator('.meta').textContent(), /stopped/);
      assert.ok((await turn.locator('.answer').textContent()).length > 0, 'the partial reply stays');
      assert.equal(await page.locator('#stop').isHidden(), true);
      assert.equal(await page.locator('#send').isVisible(), true);
      // Usable again: the next message goes out with the partial reply as the assistant's turn.
      await page.unroute('**/v1/chat/completions');
      await cdp.send('Network.emulateNetworkConditions',
        { offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1 });
      await page.locator('.settings summary').click();
      await page.locator('#max-tokens').fill('8');
      await sendMessage(page, 'Shorter, please.');
      await replyDone(page, 2);
      const body = JSON.parse(seen.chats[1].postData());
      assert.deepEqual(body.messages.map((m) => m.role), ['user', 'assistant', 'user']);
      assert.ok(body.messages[1].content.length > 0);
      assert.deepEqual(seen.errors.filter((e) => !/ERR_ABORTED|aborted/i.test(e)), []);
    } finally {
      await context.close();
    }
  });

  test('(d) a hostile reply stays text: no markup, no script, no javascript: link', async () => {
    const { context, page, seen } = await openPage(browser, server.url);
    try {
      await waitForModels(page, 2);
      const img = '<img src=x onerror="window.__pwned=1">';
      const script = '<script>window.__pwned=1</script>';
      const jsLink = '[x](javascript:window.__pwned=1)';
      const content = `# Title\n\nHi ${img} there ${script}\n\n` +
        `Click ${jsLink} or [docs](https://example.com/docs).\n\n` +
        '- **bold** and *italic* and `<b>code</b>`\n- second\n\n' +
        '```html\n<iframe src="javascript:window.__pwned=1"></iframe>\n<script>window.__pwned=1</script>\n```\n';
      // Cut into small pieces, as tokens arrive, so that markup is split across chunks too.
      const deltas = [{ reasoning_content: `thinking ${img}` }];
      for (let i = 0; i < content.length; i += 7) deltas.push({ content: content.slice(i, i + 7) });
      await routeSse(page, sseBody(deltas));
      await sendMessage(page, 'Say something nasty.');
      const turn = await replyDone(page, 1);
      const conversation = page.locator('#conversation');
      assert.equal(await conversation.locator('img, script, iframe, object, embed, [onerror]').count(), 0);
      assert.equal(await page.locator('a[href^="javascript"]').count(), 0);
      const answer = turn.locator('.answer');
      const shown = await answer.textContent();
      for (const literal of [img, script, jsLink]) assert.ok(shown.includes(literal), `shown literally: ${literal}`);
      const good = answer.locator('a[href="https://example.com/docs"]');
      assert.equal(await good.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await good.getAttribute('target'), '_blank');
      assert.equal(await answer.locator('h1').textContent(), 'Title');
      assert.equal(await answer.locator('ul > li').count(), 2);
      assert.equal(await answer.locator('li strong').textContent(), 'bold');
      assert.equal(await answer.locator('li em').textContent(), 'italic');
      assert.equal(await answer.locator('li code').textContent(), '<b>code</b>');
      assert.equal(await answer.locator('.code-block .code-lang').textContent(), 'html');
      assert.equal(await answer.locator('pre > code').textContent(),
        '<iframe src="javascript:window.__pwned=1"></iframe>\n<script>window.__pwned=1</script>');
      assert.ok((await turn.locator('.thinking-body').textContent()).includes(img));
      // An <img> with a failing src would have fired by now; give event handlers a turn anyway.
      await page.evaluate(() => new Promise((r) => setTimeout(r, 100)));
      assert.equal(await page.evaluate(() => window.__pwned), undefined);
      assert.deepEqual(seen.errors, []);
      await page.screenshot({ path: path.join(kArtifacts, 'chat_page_markdown.png') });
    } finally {
      await context.close();
    }
  });

  test('(e) Qwen3 thinking is shown folded above the answer', async () => {
    const { context, page, seen } = await openPage(browser, server.url);
    try {
      await waitForModels(page, 2);
      await page.locator('#model').selectOption('qwen3-tiny');
      // The real qwen3-tiny first: the request names it and a reply comes back.
      await page.locator('.settings summary').click();
      await page.locator('#max-tokens').fill('16');
      await sendMessage(page, 'Hello');
      await replyDone(page, 1);
      assert.equal(JSON.parse(seen.chats[0].postData()).model, 'qwen3-tiny');
      // Then a reply of known shape: reasoning_content deltas, then content.
      await page.locator('#new-chat').click();
      await routeSse(page, sseBody([{ reasoning_content: 'The user greets me. ' },
        { reasoning_content: 'I should greet back.' }, { content: 'Hello ' }, { content: 'there!' }]));
      await sendMessage(page, 'Hi');
      const turn = await replyDone(page, 1);
      const details = turn.locator('details.thinking');
      assert.equal(await details.isVisible(), true);
      assert.equal(await details.evaluate((d) => d.open), false, 'folded');
      assert.equal(await turn.locator('.thinking-body').textContent(), 'The user greets me. I should greet back.');
      assert.equal(await turn.locator('.answer').textContent(), 'Hello there!');
      assert.equal(await details.evaluate((d) => d.nextElementSibling.classList.contains('answer')), true);
      await details.locator('summary').click();
      assert.equal(await details.evaluate((d) => d.open), true);
      assert.deepEqual(seen.errors, []);
    } finally {
      await context.close();
    }
  });

  test('errors and finish reasons are shown in the conversation', async () => {
    const { context, page, seen } = await openPage(browser, server.url);
    try {
      await waitForModels(page, 2);
      await page.route('**/v1/chat/completions', (route) => route.fulfill({
        status: 429, headers: { 'Content-Type': 'application/json', 'Retry-After': '3' },
        body: JSON.stringify({ error: { message: 'rate limit: too many requests', type: 'rate_limit_error',
          param: null, code: 'rate_limit_exceeded' } }),
      }));
      await sendMessage(page, 'Again');
      let turn = await replyDone(page, 1);
      assert.equal(await turn.locator('.error-line').textContent(),
        'HTTP 429: rate limit: too many requests (retry after 3 s)');
      assert.equal(await page.locator('#prompt').inputValue(), 'Again', 'the unsent message is offered again');
      await page.unroute('**/v1/chat/completions');
      await routeSse(page, sseBody([{ content: 'Partly' }], 'content_filter'));
      await sendMessage(page, 'Again');
      turn = await replyDone(page, 2);
      assert.match(await turn.locator('.meta').textContent(), /content filter/);
      // The refused message is not part of the conversation.
      const body = JSON.parse(seen.chats.at(-1).postData());
      assert.deepEqual(body.messages, [{ role: 'user', content: 'Again' }]);
      assert.deepEqual(seen.errors.filter((e) => !/status of 429/.test(e)), []);
    } finally {
      await context.close();
    }
  });

  test('(f) API keys: the page asks for one, shows the refusal of a wrong one, chats with the right one', async () => {
    const { context, page, seen } = await openPage(browser, keyServer.url);
    try {
      await page.locator('#key-panel').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#model').isDisabled(), true);
      await page.locator('#api-key').fill('wrong');
      await page.locator('#key-save').click();
      await page.locator('#key-error').filter({ hasText: /HTTP 401/ }).waitFor();
      assert.match(await page.locator('#key-error').textContent(), /HTTP 401: .*key/i);
      await page.locator('#api-key').fill('sekret');
      await page.locator('#key-save').click();
      await waitForModels(page, 1);
      assert.equal(await page.locator('#key-panel').isHidden(), true);
      assert.deepEqual(await modelIds(page), ['tiny']);
      await page.locator('.settings summary').click();
      await page.locator('#max-tokens').fill('8');
      await sendMessage(page, 'Hello');
      const turn = await replyDone(page, 1);
      assert.equal(await turn.locator('.error-line').count(), 0);
      assert.equal(seen.chats[0].headers().authorization, 'Bearer sekret');
      // The key is remembered by the browser.
      await page.reload();
      await waitForModels(page, 1);
      assert.equal(await page.locator('#key-panel').isHidden(), true);
      assert.deepEqual(seen.errors.filter((e) => !/status of 401/.test(e)), []);
    } finally {
      await context.close();
    }
  });
});
