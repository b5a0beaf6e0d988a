// The API token: kept in localStorage, sent as a Bearer header, asked for when the server says 401.

import { localize } from './i18n.js';

const STORAGE_KEY = 'image-processor.token';
const listeners = new Set();
let prompt = null; // the open prompt's promise, shared by every request that hit a 401
let declined = false; // the user cancelled: stop asking on every background request
let memoryToken = ''; // fallback when localStorage is unavailable

export function getToken() {
  try {
    return localStorage.getItem(STORAGE_KEY) || '';
  } catch {
    return '';
  }
}

function storeToken(token) {
  try {
    if (token) localStorage.setItem(STORAGE_KEY, token);
    else localStorage.removeItem(STORAGE_KEY);
  } catch {
    // Storage disabled (private mode): the token then lasts for this page only.
  }
  memoryToken = token;
  for (const listener of listeners) listener(token);
}

/** Headers for fetch/XHR: the Bearer token, if one is set. */
export function authHeaders() {
  const token = getToken() || memoryToken;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function currentToken() {
  return getToken() || memoryToken;
}

/** Calls `listener(token)` whenever the token is saved or forgotten. */
export function onTokenChange(listener) {
  listeners.add(listener);
}

/** Wires the dialog's buttons once: Save submits (also on Enter), the others close it. */
function setupDialog(dialog) {
  if (dialog.dataset.ready) return;
  dialog.dataset.ready = 'true';
  document.getElementById('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    dialog.close('save');
  });
  document.getElementById('token-cancel').addEventListener('click', () => dialog.close('cancel'));
  document.getElementById('token-clear').addEventListener('click', () => dialog.close('clear'));
}

/**
 * Called after a 401: opens the token dialog (once, however many requests failed) and resolves
 * to true when a new token was saved, so the caller can retry.
 */
export function requestToken({ userInitiated = false } = {}) {
  if (prompt) return prompt;
  if (declined && !userInitiated) return Promise.resolve(false);
  const dialog = document.getElementById('token-dialog');
  const input = document.getElementById('token-input');
  const reason = document.getElementById('token-reason');
  const hadToken = Boolean(currentToken());
  setupDialog(dialog);
  localize(reason, userInitiated ? 'token.reasonAsked' : hadToken ? 'token.reasonRejected' : 'token.reasonRequired');
  input.value = '';
  prompt = new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        prompt = null;
        const action = dialog.returnValue;
        const token = input.value.trim();
        input.value = '';
        if (action === 'save' && token) {
          declined = false;
          storeToken(token);
          resolve(true);
        } else if (action === 'clear') {
          storeToken('');
          resolve(false);
        } else {
          declined = !userInitiated || declined;
          resolve(false);
        }
      },
      { once: true },
    );
    dialog.returnValue = '';
    dialog.showModal();
    input.focus();
  });
  return prompt;
}
