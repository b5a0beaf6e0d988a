// Checks the UI's string catalogue (ui/i18n.js) against its use in ui/, so translations cannot
// silently rot. Run by scripts/test-ui before the browser test; alone: node tests/ui/i18n-check.mjs
//
// Fails when:
//  - en and pt-BR have different keys, different plural forms, or different {placeholders};
//  - a key used in ui/ is not in the catalogue: t('…'), data-i18n="…", data-i18n-attr="attr:…",
//    or any string literal in ui/*.js shaped like a key of a catalogue section ('status.failed');
//  - a catalogue key is used nowhere (neither as a literal in ui/*.js nor in index.html);
//  - t() is called with a computed key (the check could not see it: use a map of literal keys);
//  - index.html has text or a text attribute (aria-label, title, placeholder, alt, description)
//    that no data-i18n / data-i18n-attr covers, or fallback English text that differs from `en`;
//  - ui/*.js sets an obviously hard-coded text (text:/title:/aria-label: '…', textContent = '…',
//    announce('…')).

import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const UI = fileURLToPath(new URL('../../ui/', import.meta.url));
const { CATALOGUES } = await import(new URL('../../ui/i18n.js', import.meta.url));

const problems = [];
const fail = (message) => problems.push(message);

// ---- the catalogues agree ----------------------------------------------------------------------

const languages = Object.keys(CATALOGUES);
const base = CATALOGUES.en;
const placeholders = (text) => [...new Set([...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]))].sort().join(',');
const forms = (value) => (typeof value === 'object' ? Object.values(value) : [value]);

for (const language of languages) {
  const dict = CATALOGUES[language];
  for (const key of Object.keys(base)) if (!(key in dict)) fail(`${language}: missing key "${key}" (it is in en)`);
  for (const key of Object.keys(dict)) if (!(key in base)) fail(`${language}: key "${key}" is not in en`);
  for (const [key, value] of Object.entries(dict)) {
    const valid = typeof value === 'string' || (value && typeof value === 'object' && typeof value.other === 'string');
    if (!valid) {
      fail(`${language}: "${key}" is neither a text nor plural forms with "other"`);
      continue;
    }
    if (typeof value === 'object') {
      const known = new Intl.PluralRules(language).resolvedOptions().pluralCategories;
      for (const form of Object.keys(value)) if (!known.includes(form)) fail(`${language}: "${key}" has plural form "${form}", unknown in ${language}`);
      if (!value.other.includes('{count}') && !Object.values(value).some((f) => f.includes('{count}'))) fail(`${language}: plural "${key}" never shows {count}`);
    }
    const english = base[key];
    if (english === undefined) continue;
    if ((typeof english === 'object') !== (typeof value === 'object')) fail(`${language}: "${key}" is plural in one language only`);
    const want = placeholders(forms(english).join(' '));
    for (const form of forms(value)) {
      if (typeof form !== 'string') continue;
      const got = placeholders(form);
      // A plural form may leave {count} out ("one image" in a language that says so).
      const normalise = (list) => list.split(',').filter((p) => p && p !== 'count').join(',');
      if (normalise(got) !== normalise(want)) fail(`${language}: "${key}" has placeholders {${got}}, en has {${want}}`);
      if (!form.trim()) fail(`${language}: "${key}" is empty`);
    }
  }
}

// ---- keys used in ui/ ----------------------------------------------------------------------

const keys = new Set(Object.keys(base));
const sections = new Set([...keys].map((key) => key.split('.')[0]));
const used = new Set();
const use = (key, where) => {
  if (!keys.has(key)) fail(`${where}: key "${key}" is not in the catalogue`);
  used.add(key);
};

const files = (await readdir(UI)).filter((name) => name.endsWith('.js') && name !== 'i18n.js').sort();
for (const name of files) {
  const source = await readFile(`${UI}${name}`, 'utf8');
  const code = source.replace(/^\s*\/\/.*$/gm, ''); // whole-line comments may quote anything
  const line = (index) => `ui/${name}:${code.slice(0, index).split('\n').length}`;
  // t() with a key built from pieces (`status.${x}`, 'status.' + x) hides it from this check;
  // a variable is fine: its value is a literal somewhere (a map of keys), seen below.
  for (const m of code.matchAll(/\bt\(\s*([^,)]*)/g)) {
    const arg = m[1].trim();
    if (arg.includes('`') || arg.includes('+')) fail(`${line(m.index)}: t() with a key built from pieces (${arg}); write the key out`);
  }
  // Every string literal shaped like a key of a known section is a use (maps, data-i18n props).
  for (const m of code.matchAll(/(['"])([a-z][A-Za-z0-9]*(?:\.[A-Za-z0-9_]+)+)\1/g)) {
    if (sections.has(m[2].split('.')[0])) use(m[2], line(m.index));
  }
  // data-i18n-attr strings built by hand: "aria-label:key;title:key".
  for (const m of code.matchAll(/['"]((?:[a-z-]+:[a-zA-Z0-9_.]+;?)+)['"]/g)) {
    for (const pair of m[1].split(';').filter(Boolean)) use(pair.split(':')[1], line(m.index));
  }
  // Obvious hard-coded texts.
  const hardCoded = [
    /(?:\btext|\btitle|'aria-label'|\balt|\bplaceholder)\s*:\s*(['"`])(?!\$\{)[^'"`]*[A-Za-z]/gd,
    /\.(?:textContent|title|placeholder)\s*=\s*(['"`])(?!\$\{)[^'"`]*[A-Za-z]/gd,
    /setAttribute\(\s*'(?:aria-label|title|alt|placeholder)'\s*,\s*(['"`])(?!\$\{)[^'"`]*[A-Za-z]/gd,
    /\b(?:announce|confirm|alert)\(\s*(['"`])/gd,
  ];
  for (const pattern of hardCoded) {
    for (const m of code.matchAll(pattern)) {
      // The literal that starts at the matched quote: a catalogue key there is fine (i18nAttrs).
      const from = m.indices[1][0];
      const quote = code[from];
      const value = code.slice(from + 1, code.indexOf(quote, from + 1));
      if (keys.has(value)) continue;
      fail(`${line(m.index)}: hard-coded text (${m[0].slice(0, 60)}…); use t()`);
    }
  }
}

// ---- index.html ------------------------------------------------------------------------------

const html = await readFile(`${UI}index.html`, 'utf8');
const htmlLine = (index) => `ui/index.html:${html.slice(0, index).split('\n').length}`;
const attrOf = (tag, name) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1] ?? new RegExp(`\\s${name}='([^']*)'`).exec(tag)?.[1];

for (const m of html.matchAll(/\sdata-i18n="([^"]*)"/g)) use(m[1], htmlLine(m.index));
for (const m of html.matchAll(/\sdata-i18n-attr="([^"]*)"/g)) {
  for (const pair of m[1].split(';').filter(Boolean)) use(pair.split(':')[1]?.trim(), htmlLine(m.index));
}

// Walk the tags: text must sit directly in an element with data-i18n (or translate="no").
// Skipped: <script>, <style>, <svg> and <noscript> (shown only without JavaScript, so untranslatable).
const skipped = html.replace(/<(script|style|svg|noscript)\b[\s\S]*?<\/\1>/g, (whole) => whole.replace(/[^\n]/g, ' '));
const stack = [];
const VOID = new Set(['meta', 'link', 'input', 'br', 'img', 'hr', 'source', 'path']);
for (const m of skipped.matchAll(/<(\/?)([a-zA-Z0-9-]+)([^>]*)>|([^<]+)/g)) {
  const [, closing, tagName, rest, text] = m;
  if (text !== undefined) {
    if (!/[A-Za-zÀ-ÿ]/.test(text) || stack.length === 0) continue;
    const parent = stack[stack.length - 1];
    if (parent.translateNo) continue;
    if (!parent.key) {
      fail(`${htmlLine(m.index)}: text "${text.trim().slice(0, 50)}" in <${parent.name}> without data-i18n`);
      continue;
    }
    const english = base[parent.key];
    if (typeof english === 'string' && !parent.vars && english !== text.trim()) {
      fail(`${htmlLine(m.index)}: fallback text "${text.trim()}" differs from en "${english}" (${parent.key})`);
    }
    continue;
  }
  const name = tagName.toLowerCase();
  if (closing) {
    while (stack.length && stack.pop().name !== name);
    continue;
  }
  const tag = `<${name}${rest}>`;
  // Attributes a person reads or hears.
  const covered = new Set((attrOf(tag, 'data-i18n-attr') || '').split(';').filter(Boolean).map((pair) => pair.split(':')[0].trim()));
  for (const attr of ['aria-label', 'title', 'placeholder', 'alt', 'content']) {
    const value = attrOf(tag, attr);
    if (value === undefined || !/[A-Za-z]/.test(value)) continue;
    if (attr === 'content' && attrOf(tag, 'name') !== 'description') continue;
    if (!covered.has(attr)) fail(`${htmlLine(m.index)}: ${attr}="${value}" on <${name}> without data-i18n-attr`);
    else {
      const key = (attrOf(tag, 'data-i18n-attr') || '').split(';').map((pair) => pair.split(':')).find(([a]) => a.trim() === attr)?.[1]?.trim();
      if (typeof base[key] === 'string' && base[key] !== value) fail(`${htmlLine(m.index)}: ${attr}="${value}" differs from en "${base[key]}" (${key})`);
    }
  }
  if (VOID.has(name) || rest.trim().endsWith('/')) continue;
  const parent = stack[stack.length - 1];
  stack.push({
    name,
    key: attrOf(tag, 'data-i18n'),
    vars: attrOf(tag, 'data-i18n-vars'),
    translateNo: attrOf(tag, 'translate') === 'no' || Boolean(parent?.translateNo),
  });
}

// ---- nothing unused -----------------------------------------------------------------------------

for (const key of keys) if (!used.has(key)) fail(`ui/i18n.js: key "${key}" is used nowhere in ui/ (remove it, or use it)`);

if (problems.length) {
  console.error(`i18n check: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
const plural = Object.values(base).filter((v) => typeof v === 'object').length;
console.log(`i18n check: ${keys.size} keys (${plural} with plural forms) in ${languages.join(' and ')}, all used, none missing; index.html fully keyed`);
