// The chat page of `edgellm serve` (docs/serving.md): a conversation kept in the page, sent whole to
// POST /v1/chat/completions with each new message and streamed back as server-sent events.
//
// Safety rule of this file: text from the model or the server only ever reaches the page through
// textContent / createTextNode. No innerHTML, outerHTML, insertAdjacentHTML, document.write or eval:
// the Markdown renderer below builds DOM nodes, and a link gets an href only when it is http(s).
'use strict';

const kKeyStorage = 'edgellm.apiKey';
const kModelStorage = 'edgellm.model';
const kMinRateSeconds = 0.005;  // shorter spans give no meaningful rate

const ui = {
  model: byId('model'),
  conversation: byId('conversation'),
  empty: byId('empty'),
  composer: byId('composer'),
  prompt: byId('prompt'),
  send: byId('send'),
  stop: byId('stop'),
  newChat: byId('new-chat'),
  status: byId('status'),
  keyPanel: byId('key-panel'),
  keyForm: byId('key-form'),
  keyInput: byId('api-key'),
  keyError: byId('key-error'),
  keyToggle: byId('key-toggle'),
  keyForget: byId('key-forget'),
  system: byId('system'),
  maxTokens: byId('max-tokens'),
  temperature: byId('temperature'),
};

const state = {
  history: [],       // finished turns [{role, content}], sent with every request
  chatId: 0,         // bumped by "New chat": a reply of an older chat must not land in the new one
  controller: null,  // AbortController of the reply being streamed (null: idle)
  apiKey: storageGet(kKeyStorage),
  modelsTimer: 0,
};

function byId(id) {
  return document.getElementById(id);
}

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

function text(tag, className, value) {
  const node = el(tag, className);
  node.textContent = value;
  return node;
}

// localStorage throws in some privacy modes: the page then works without remembering.
function storageGet(name) {
  try {
    return localStorage.getItem(name) || '';
  } catch {
    return '';
  }
}

function storageSet(name, value) {
  try {
    if (value) localStorage.setItem(name, value);
    else localStorage.removeItem(name);
  } catch {
    // not remembered; nothing else depends on it
  }
}

// ---- talking to the server ----

function headers(extra) {
  const h = Object.assign({}, extra);
  if (state.apiKey) h.Authorization = 'Bearer ' + state.apiKey;
  return h;
}

// One line for an error response: the server's message (OpenAI's {"error": {"message"}}, or a plain
// {"error": "..."}), the status, and Retry-After when the server sent one (429, 503).
async function errorMessage(resp) {
  let body = '';
  try {
    body = await resp.text();
  } catch {
    // the body could not be read: the status says enough
  }
  let message = '';
  try {
    const parsed = JSON.parse(body);
    const e = parsed && parsed.error;
    if (typeof e === 'string') message = e;
    else if (e && typeof e.message === 'string') message = e.message;
  } catch {
    // not JSON
  }
  if (!message) message = body.trim().slice(0, 300) || resp.statusText || 'the request failed';
  let line = `HTTP ${resp.status}: ${message}`;
  const retry = resp.headers.get('Retry-After');
  if (retry) line += ` (retry after ${retry} s)`;
  return line;
}

function setStatus(message, isError) {
  ui.status.textContent = message || '';
  ui.status.classList.toggle('is-error', Boolean(isError));
}

// GET /v1/models fills the picker. 401: the server has API keys, ask for one. 503: still loading, ask again.
async function loadModels() {
  clearTimeout(state.modelsTimer);
  let resp;
  try {
    resp = await fetch('/v1/models', { headers: headers(), cache: 'no-store' });
  } catch (err) {
    setStatus('Cannot reach the server (' + err.message + '); trying again…', true);
    state.modelsTimer = setTimeout(loadModels, 2000);
    return;
  }
  if (resp.status === 401) {
    const message = await errorMessage(resp);
    showKeyPanel(state.apiKey ? message : '');
    setModels([]);
    setStatus('This server needs an API key.', false);
    return;
  }
  if (resp.status === 503) {
    setStatus('The server is loading its models…', false);
    state.modelsTimer = setTimeout(loadModels, 1000);
    return;
  }
  if (!resp.ok) {
    setStatus(await errorMessage(resp), true);
    return;
  }
  let ids = [];
  try {
    const body = await resp.json();
    ids = (body.data || []).map((m) => m && m.id).filter((id) => typeof id === 'string');
  } catch (err) {
    setStatus('The model list could not be read: ' + err.message, true);
    return;
  }
  ui.keyPanel.hidden = true;
  ui.keyToggle.hidden = !state.apiKey;
  ui.keyToggle.textContent = 'API key ✓';
  ui.keyError.textContent = '';
  setModels(ids);
  setStatus(ids.length ? '' : 'The server serves no model.', !ids.length);
}

function setModels(ids) {
  const wanted = ui.model.value || storageGet(kModelStorage);
  const options = ids.map((id) => {
    const option = text('option', '', id);
    option.value = id;
    return option;
  });
  if (!options.length) {
    const none = text('option', '', ids.length === 0 && !ui.keyPanel.hidden ? 'API key needed' : 'no models');
    none.value = '';
    options.push(none);
  }
  ui.model.replaceChildren(...options);
  if (ids.includes(wanted)) ui.model.value = wanted;
  ui.model.disabled = ids.length === 0;
  updateSendable();
}

function showKeyPanel(message) {
  ui.keyPanel.hidden = false;
  ui.keyToggle.hidden = false;
  ui.keyToggle.textContent = 'API key';
  ui.keyError.textContent = message || '';
  if (document.activeElement !== ui.prompt) ui.keyInput.focus();
}

// ---- the conversation ----

function addUserTurn(content) {
  ui.empty.hidden = true;
  const turn = el('div', 'turn turn-user');
  turn.append(text('div', 'bubble', content));
  ui.conversation.append(turn);
  scrollToEnd(true);
  return turn;
}

// The elements of an assistant reply: the folded thinking, the answer, the figures under it.
function addAssistantTurn(model) {
  ui.empty.hidden = true;
  const turn = el('div', 'turn turn-assistant');
  turn.dataset.state = 'streaming';  // 'done' once the reply has ended, however it ended
  const thinking = el('details', 'thinking');
  thinking.hidden = true;
  const summary = text('summary', '', 'Thinking…');
  const thinkingBody = el('div', 'thinking-body');
  thinking.append(summary, thinkingBody);
  const body = el('div', 'answer md');
  body.append(el('span', 'cursor'));
  const meta = el('div', 'meta');
  const modelLabel = text('span', 'meta-model', model);
  const figures = text('span', 'meta-figures', 'waiting for the first token…');
  meta.append(modelLabel, figures);
  turn.append(thinking, body, meta);
  ui.conversation.append(turn);
  scrollToEnd(true);
  return { turn, thinking, summary, thinkingBody, body, meta, figures, frame: 0 };
}

function nearEnd() {
  const c = ui.conversation;
  return c.scrollHeight - c.scrollTop - c.clientHeight < 120;
}

function scrollToEnd(force) {
  if (force || nearEnd()) ui.conversation.scrollTop = ui.conversation.scrollHeight;
}

// The reply so far, counted: completion tokens from the final usage chunk when the server sent it,
// else the chunks that carried text (one token each on edgellm). The rate runs from the first token to
// now; a short reply from a fast model can arrive in one read, and then it runs from the request instead
// (prefill included: a lower bound rather than no figure).
function figures(reply, now) {
  const tokens = reply.usage && Number.isFinite(reply.usage.completion_tokens)
    ? reply.usage.completion_tokens : reply.chunks;
  const parts = [`${tokens} token${tokens === 1 ? '' : 's'}`];
  let seconds = (now - reply.firstAt) / 1000;
  if (seconds < kMinRateSeconds && reply.ended) seconds = (now - reply.sentAt) / 1000;
  if (seconds >= kMinRateSeconds && tokens > 0) parts.push(`${(tokens / seconds).toFixed(1)} tokens/s`);
  return parts.join(' · ');
}

function render(view, reply) {
  const wasNearEnd = nearEnd();
  // Qwen3 without thinking still sends its empty <think> block's newlines: no box for those.
  if (reply.reasoning.trim()) {
    view.thinking.hidden = false;
    view.thinkingBody.textContent = reply.reasoning;
  }
  view.body.replaceChildren(renderMarkdown(reply.content));
  if (state.controller && !reply.ended) view.body.append(el('span', 'cursor'));
  if (reply.firstAt) view.figures.textContent = figures(reply, reply.ended ? reply.endAt : performance.now());
  if (wasNearEnd) scrollToEnd(true);
}

// Re-rendering the whole reply per chunk is cheap at chat sizes; once per frame is enough.
function scheduleRender(view, reply) {
  if (view.frame) return;
  view.frame = requestAnimationFrame(() => {
    view.frame = 0;
    render(view, reply);
  });
}

function finishTurn(view, reply) {
  if (view.frame) cancelAnimationFrame(view.frame);
  view.frame = 0;
  reply.ended = true;
  render(view, reply);
  view.summary.textContent = 'Thinking';
  if (!reply.firstAt) view.figures.textContent = reply.stopped ? 'stopped before the first token' : '';
  const notes = [];
  if (reply.stopped) notes.push('stopped');
  if (reply.finish === 'length') notes.push('cut at the token limit (finish_reason: length)');
  if (reply.finish === 'content_filter') {
    notes.push("cut by the server's content filter (finish_reason: content_filter)");
  }
  for (const note of notes) view.meta.append(text('span', 'meta-note', note));
  if (reply.error) view.turn.append(text('div', 'error-line', reply.error));
  if (!reply.content && !reply.error && !reply.reasoning && !reply.stopped) {
    view.body.append(text('span', 'empty-reply', '(empty reply)'));
  }
  scrollToEnd(false);
  view.turn.dataset.state = 'done';
}

function setBusy(busy) {
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  updateSendable();
}

function updateSendable() {
  ui.send.disabled = Boolean(state.controller) || !ui.model.value;
}

function requestBody(model, messages) {
  const body = { model, messages, stream: true, stream_options: { include_usage: true } };
  const maxTokens = parseInt(ui.maxTokens.value, 10);
  if (maxTokens > 0) body.max_tokens = maxTokens;
  const temperature = parseFloat(ui.temperature.value);
  if (Number.isFinite(temperature) && temperature >= 0) body.temperature = temperature;
  return body;
}

async function send(content) {
  const model = ui.model.value;
  if (!model || state.controller) return;
  const chatId = state.chatId;
  const userTurn = addUserTurn(content);
  const view = addAssistantTurn(model);
  const messages = [];
  const system = ui.system.value.trim();
  if (system) messages.push({ role: 'system', content: system });
  messages.push(...state.history, { role: 'user', content });

  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  const reply = {
    content: '', reasoning: '', chunks: 0, sentAt: performance.now(), firstAt: 0, endAt: 0, usage: null,
    finish: null, error: '', stopped: false, ended: false,
  };
  try {
    const resp = await fetch('/v1/chat/completions', {
      method: 'POST',
      headers: headers({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(requestBody(model, messages)),
      signal: controller.signal,
    });
    if (!resp.ok) {
      reply.error = await errorMessage(resp);
      if (resp.status === 401) showKeyPanel(reply.error);
    } else {
      await readStream(resp, reply, view);
    }
  } catch (err) {
    if (err && err.name === 'AbortError') reply.stopped = true;
    else reply.error = 'The connection failed: ' + (err && err.message ? err.message : String(err));
  }
  reply.endAt = performance.now();
  if (state.controller === controller) state.controller = null;
  finishTurn(view, reply);
  setBusy(Boolean(state.controller));
  if (chatId !== state.chatId) return;
  if (reply.content) {
    // A stopped reply is kept as far as it went: the next message continues from it.
    state.history.push({ role: 'user', content }, { role: 'assistant', content: reply.content });
  } else {
    // Nothing came back: the message is not part of the conversation; offer it again.
    userTurn.classList.add('unsent');
    if (!ui.prompt.value) {
      ui.prompt.value = content;
      autoGrow();
    }
  }
  ui.prompt.focus();
}

// Server-sent events: "data: {json}" lines, an empty line ends an event, ":" lines are comments
// (keep-alives), "data: [DONE]" ends the stream.
async function readStream(resp, reply, view) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      let line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length && handleEvent(data.join('\n'), reply, view)) {
          reader.cancel().catch(() => {});
          return;
        }
        data = [];
      } else if (line.startsWith('data:')) {
        data.push(line.slice(5).replace(/^ /, ''));
      }
    }
    if (done) break;
  }
  if (data.length) handleEvent(data.join('\n'), reply, view);
}

// Returns true at the end of the stream.
function handleEvent(payload, reply, view) {
  if (payload.trim() === '[DONE]') return true;
  let chunk;
  try {
    chunk = JSON.parse(payload);
  } catch {
    return false;
  }
  if (!chunk || typeof chunk !== 'object') return false;
  if (chunk.error) {
    const e = chunk.error;
    reply.error = 'Error: ' + (typeof e === 'string' ? e : String(e.message || 'the server ended the reply'));
    return false;
  }
  const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : null;
  if (choice) {
    const delta = choice.delta || {};
    let got = false;
    if (typeof delta.reasoning_content === 'string' && delta.reasoning_content) {
      reply.reasoning += delta.reasoning_content;
      got = true;
    }
    if (typeof delta.content === 'string' && delta.content) {
      reply.content += delta.content;
      got = true;
    }
    if (got) {
      reply.chunks += 1;
      if (!reply.firstAt) reply.firstAt = performance.now();
    }
    if (choice.finish_reason) reply.finish = choice.finish_reason;
  }
  if (chunk.usage) reply.usage = chunk.usage;
  scheduleRender(view, reply);
  return false;
}

function stop() {
  if (state.controller) state.controller.abort();
}

function newChat() {
  stop();
  state.chatId += 1;
  state.history = [];
  ui.conversation.replaceChildren(ui.empty);
  ui.empty.hidden = false;
  ui.prompt.focus();
}

// ---- Markdown, as DOM nodes ----
// Blocks: paragraphs, ``` fenced code (a language label; an unclosed fence runs to the end, as while the
// reply streams), # headings, - / 1. lists, > quotes, --- rules. Inline: `code`, **bold**, *italic*,
// [text](http(s) URL) and bare http(s) URLs. Anything else stays text.

const kFence = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)/;
const kHeading = /^ {0,3}(#{1,6})\s+(.*?)(?:\s+#+)?\s*$/;
const kRule = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const kListItem = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
const kQuote = /^ {0,3}>\s?(.*)$/;

function renderMarkdown(source) {
  const out = document.createDocumentFragment();
  const lines = source.split('\n');
  let paragraph = [];
  let list = null;  // {node, ordered}
  let quote = null; // lines of the quote being gathered
  const flushParagraph = () => {
    if (paragraph.length) out.append(inlineLines(el('p'), paragraph));
    paragraph = [];
  };
  const flushQuote = () => {
    if (quote) {
      const node = el('blockquote');
      node.append(renderMarkdown(quote.join('\n')));
      out.append(node);
    }
    quote = null;
  };
  const flushAll = () => {
    flushParagraph();
    flushQuote();
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = kFence.exec(line);
    if (fence) {
      flushAll();
      const marker = fence[1];
      const code = [];
      i++;
      while (i < lines.length && !isClosingFence(lines[i], marker)) code.push(lines[i++]);
      out.append(codeBlock(fence[2], code.join('\n')));
      continue;
    }
    const quoted = kQuote.exec(line);
    if (quoted) {
      flushParagraph();
      list = null;
      (quote = quote || []).push(quoted[1]);
      continue;
    }
    flushQuote();
    if (!line.trim()) {
      flushAll();
      continue;
    }
    const heading = kHeading.exec(line);
    if (heading) {
      flushAll();
      out.append(inlineLines(el('h' + heading[1].length), [heading[2]]));
      continue;
    }
    if (kRule.test(line)) {
      flushAll();
      out.append(el('hr'));
      continue;
    }
    const item = kListItem.exec(line);
    if (item) {
      flushParagraph();
      const ordered = /\d/.test(item[2]);
      if (!list || list.ordered !== ordered) {
        list = { node: el(ordered ? 'ol' : 'ul'), ordered };
        const start = parseInt(item[2], 10);
        if (ordered && start !== 1) list.node.start = start;
        out.append(list.node);
      }
      list.node.append(inlineLines(el('li'), [item[3]]));
      continue;
    }
    if (list && /^\s+\S/.test(line)) {
      // An indented line under an item continues it.
      const last = list.node.lastElementChild;
      last.append(el('br'));
      appendInline(last, line.trim());
      continue;
    }
    list = null;
    paragraph.push(line);
  }
  flushAll();
  return out;
}

function isClosingFence(line, marker) {
  const trimmed = line.trim();
  return trimmed.length >= marker.length && trimmed === marker[0].repeat(trimmed.length);
}

function codeBlock(lang, code) {
  const block = el('div', 'code-block');
  const head = el('div', 'code-head');
  head.append(text('span', 'code-lang', lang || 'text'));
  const copy = text('button', 'code-copy', 'Copy');
  copy.type = 'button';
  copy.addEventListener('click', () => copyText(code, copy));
  head.append(copy);
  const pre = el('pre');
  const codeNode = text('code', '', code);
  if (/^[\w+#.-]{1,32}$/.test(lang)) codeNode.className = 'language-' + lang;
  pre.append(codeNode);
  block.append(head, pre);
  return block;
}

function copyText(value, button) {
  const done = (label) => {
    button.textContent = label;
    setTimeout(() => { button.textContent = 'Copy'; }, 1200);
  };
  if (!navigator.clipboard) {
    done('Copy failed');
    return;
  }
  navigator.clipboard.writeText(value).then(() => done('Copied'), () => done('Copy failed'));
}

function inlineLines(node, lines) {
  lines.forEach((line, index) => {
    if (index > 0) node.append(el('br'));
    appendInline(node, line);
  });
  return node;
}

// One alternative per inline form; the first that matches at the earliest position wins.
const kInline = new RegExp([
  '(`+)([^`]|[^`][^\\n]*?[^`])\\1(?!`)',             // 1, 2: code
  '\\*\\*(?=\\S)([^\\n]*?\\S)\\*\\*',                // 3: bold
  '__(?=\\S)([^\\n]*?\\S)__(?!\\w)',                 // 4: bold
  '\\*(?=[^\\s*])([^*\\n]*?[^\\s*])\\*',             // 5: italic
  '(?<!\\w)_(?=[^\\s_])([^_\\n]*?[^\\s_])_(?!\\w)',  // 6: italic (not inside snake_case)
  '\\[([^\\]\\n]+)\\]\\(\\s*([^)\\s]*)\\s*\\)',      // 7, 8: link
  '(https?:\\/\\/[^\\s<>"\'`]+)',                    // 9: bare URL
].join('|'), 'g');

function appendInline(node, source) {
  let at = 0;
  for (const m of source.matchAll(kInline)) {
    if (m.index > at) node.append(document.createTextNode(source.slice(at, m.index)));
    let end = m.index + m[0].length;
    if (m[2] !== undefined) {
      node.append(text('code', '', m[2]));
    } else if (m[3] !== undefined || m[4] !== undefined) {
      const strong = el('strong');
      appendInline(strong, m[3] !== undefined ? m[3] : m[4]);
      node.append(strong);
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const em = el('em');
      appendInline(em, m[5] !== undefined ? m[5] : m[6]);
      node.append(em);
    } else if (m[7] !== undefined) {
      const href = safeHref(m[8]);
      if (href) node.append(link(href, m[7]));
      else node.append(document.createTextNode(m[0]));  // javascript:, data:, relative...: shown as written
    } else {
      // A bare URL does not take the punctuation that ends its sentence.
      const url = m[9].replace(/[.,;:!?)\]]+$/, '');
      end = m.index + url.length;
      const href = safeHref(url);
      node.append(href ? link(href, url) : document.createTextNode(url));
    }
    at = end;
  }
  if (at < source.length) node.append(document.createTextNode(source.slice(at)));
}

function safeHref(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

function link(href, label) {
  const a = text('a', '', label);
  a.href = href;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  return a;
}

// ---- the controls ----

function autoGrow() {
  ui.prompt.style.height = 'auto';
  ui.prompt.style.height = Math.min(ui.prompt.scrollHeight, 220) + 'px';
}

function submit() {
  const content = ui.prompt.value;
  if (!content.trim() || state.controller || !ui.model.value) return;
  ui.prompt.value = '';
  autoGrow();
  send(content);
}

ui.composer.addEventListener('submit', (e) => {
  e.preventDefault();
  submit();
});
ui.prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
ui.prompt.addEventListener('input', autoGrow);
ui.stop.addEventListener('click', stop);
ui.newChat.addEventListener('click', newChat);
ui.model.addEventListener('change', () => storageSet(kModelStorage, ui.model.value));
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && state.controller) stop();
});

ui.keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) {
    ui.keyError.textContent = 'Enter a key first.';
    return;
  }
  state.apiKey = key;
  storageSet(kKeyStorage, key);
  ui.keyInput.value = '';
  ui.keyError.textContent = '';
  loadModels();
});
ui.keyForget.addEventListener('click', () => {
  state.apiKey = '';
  storageSet(kKeyStorage, '');
  ui.keyInput.value = '';
  loadModels();
});
ui.keyToggle.addEventListener('click', () => {
  ui.keyPanel.hidden = !ui.keyPanel.hidden;
  if (!ui.keyPanel.hidden) ui.keyInput.focus();
});

loadModels();
ui.prompt.focus();
