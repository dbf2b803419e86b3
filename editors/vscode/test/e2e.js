// End-to-end test of the packaged extension in a real VS Code (code-server, driven by headless
// Chromium through playwright-core): install moat.vsix; with a slow-loading model
// (MOAT_TEST_LOAD_DELAY_MS), type in a Python file while the model loads and, typing nothing more,
// see the ghost text come once it is ready, accept it with Tab, check the saved file; then in another
// file type, see moat's ghost text, accept it, check the saved file; then click the status bar item
// (toggle).
// Started by test/run.sh, which installs code-server, Node 24 and playwright-core and sets:
//   CODE_SERVER, MOAT_BIN, MOAT_MODEL, MOAT_VSIX, MOAT_ARTIFACTS, MOAT_REFERENCE (a command that
//   prints the reference suggestion for a file as JSON), CHROMIUM.
// Prints "ok - ..." / "not ok - ..." lines.
'use strict';
const { chromium } = require('playwright-core');
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} not set`);
  return v;
};
const artifacts = env('MOAT_ARTIFACTS');
fs.mkdirSync(artifacts, { recursive: true });

const ORIGINAL = 'import os\nimport sys\n\ndef main(argv):\n    path = os.path';
const TYPED = '.join(';
// Every model load in the editor's moat is delayed by this much (test-only server knob).
const LOAD_DELAY_MS = 6000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function waitFor(what, timeoutMs, fn) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
}

// Feedback (docs/feedback.md): the editor's moat records into a folder of the test's own.
function feedbackEnv(tmp) {
  return { MOAT_FEEDBACK: '1', MOAT_FEEDBACK_DIR: path.join(tmp, 'feedback') };
}

// Waits for a record of ghost text accepted through its item's command; returns a note.
async function feedbackAccepted(tmp, waitFor) {
  const file = path.join(tmp, 'feedback', 'feedback.jsonl');
  let records = [];
  await waitFor('an accepted record in the feedback file', 10000, () => {
    if (!fs.existsSync(file)) return false;
    records = fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
    return records.some((r) => r.method === 'inline' && r.outcome === 'accepted' && r.signal === 'command');
  }).catch((e) => {
    throw new Error(`${e.message}; recorded: ${JSON.stringify(records)}`);
  });
  if (records.some((r) => r.source)) throw new Error('source text recorded though feedbackSourceText is off');
  return records.map((r) => `${r.method} ${r.outcome} (${r.signal}, ${r.client})`).join(', ');
}

const results = [];
let page;
async function step(name, fn) {
  const start = Date.now();
  try {
    const note = await fn();
    results.push(true);
    console.log(`ok - vscode: ${name} (${((Date.now() - start) / 1000).toFixed(1)} s)${note ? `: ${note}` : ''}`);
  } catch (e) {
    results.push(false);
    if (page) {
      const shot = path.join(artifacts, `vscode-failed-${results.length}.png`);
      await page.screenshot({ path: shot }).catch(() => {});
      console.log(`# screenshot: ${shot}`);
    }
    console.log(`not ok - vscode: ${name} (${((Date.now() - start) / 1000).toFixed(1)} s): ${e && e.stack ? e.stack : e}`);
    throw e;
  }
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moat-vscode-'));
  const userData = path.join(tmp, 'user');
  const extensions = path.join(tmp, 'extensions');
  const workspace = path.join(tmp, 'workspace');
  fs.mkdirSync(path.join(userData, 'User'), { recursive: true });
  fs.mkdirSync(workspace, { recursive: true });
  const file = path.join(workspace, 'main.py');
  fs.writeFileSync(file, ORIGINAL);
  const loadingFile = path.join(workspace, 'loading.py');
  fs.writeFileSync(loadingFile, ORIGINAL);
  const codeActions = require('./e2e_code_actions');
  codeActions.prepare(workspace);
  const settingsFile = path.join(userData, 'User', 'settings.json');
  fs.writeFileSync(
    settingsFile,
    JSON.stringify(
      {
        'moat.serverPath': env('MOAT_BIN'),
        'moat.modelPath': env('MOAT_MODEL'),
        'editor.inlineSuggest.enabled': true,
        'editor.quickSuggestions': { other: false, comments: false, strings: false },
        'editor.suggestOnTriggerCharacters': false,
        'editor.wordBasedSuggestions': 'off',
        'editor.autoClosingBrackets': 'never',
        'files.autoSave': 'off',
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'security.workspace.trust.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoUpdate': false,
        'extensions.autoCheckUpdates': false,
        'python.languageServer': 'None',
        'chat.disableAIFeatures': true,
      },
      null,
      2,
    ),
  );

  // The paths also as workspace settings: code-server may apply user settings of machine scope
  // late (or not at all) in its remote extension host.
  fs.mkdirSync(path.join(workspace, '.vscode'), { recursive: true });
  fs.writeFileSync(
    path.join(workspace, '.vscode', 'settings.json'),
    JSON.stringify({ 'moat.serverPath': env('MOAT_BIN'), 'moat.modelPath': env('MOAT_MODEL') }, null, 2),
  );
  fs.mkdirSync(path.join(userData, 'Machine'), { recursive: true });
  fs.writeFileSync(
    path.join(userData, 'Machine', 'settings.json'),
    JSON.stringify({ 'moat.serverPath': env('MOAT_BIN'), 'moat.modelPath': env('MOAT_MODEL') }, null, 2),
  );

  const codeServer = env('CODE_SERVER');
  const serverLog = fs.openSync(path.join(artifacts, 'code-server.log'), 'w');
  let server;
  let browser;
  try {
    await step('install the .vsix into code-server', async () => {
      const out = execFileSync(
        codeServer,
        ['--user-data-dir', userData, '--extensions-dir', extensions, '--install-extension', env('MOAT_VSIX')],
        { encoding: 'utf8', timeout: 120000 },
      );
      if (!/successfully installed/.test(out)) throw new Error(out);
      return fs.readdirSync(extensions).filter((d) => d.startsWith('moat.')).join(', ');
    });

    const port = await freePort();
    server = spawn(
      codeServer,
      [
        '--bind-addr', `127.0.0.1:${port}`,
        '--auth', 'none',
        '--user-data-dir', userData,
        '--extensions-dir', extensions,
        '--disable-telemetry',
        '--disable-update-check',
        '--disable-workspace-trust',
        '--disable-getting-started-override',
        workspace,
      ],
      {
        stdio: ['ignore', serverLog, serverLog],
        env: {
          ...process.env,
          MOAT_LOG: 'info',
          MOAT_TEST_LOAD_DELAY_MS: String(LOAD_DELAY_MS),
          ...feedbackEnv(tmp),
        },
      },
    );
    await waitFor('code-server to listen', 60000, () =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.end();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      }),
    );

    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
    });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const isMac = false;
    const mod = isMac ? 'Meta' : 'Control';

    const statusItem = () => page.locator('.statusbar-item', { hasText: 'moat' }).first();
    const statusLabel = async () => ((await statusItem().getAttribute('aria-label')) || '').replace(/\s+/g, ' ');
    const decoration = () => page.locator('.ghost-text-decoration, .ghost-text-decoration-preview, .ghost-text');
    const ghostText = async () => {
      if ((await decoration().count()) === 0) return false;
      const text = (await decoration().allInnerTexts()).join('').replace(/\u00a0/g, ' ');
      return text.length > 0 ? text : false;
    };
    // moat's suggestion for a buffer, from a fresh moat (the model is deterministic).
    const reference = (text) => {
      const probe = path.join(tmp, 'probe.py');
      fs.writeFileSync(probe, text);
      return JSON.parse(
        execFileSync('sh', ['-c', `${env('MOAT_REFERENCE')} "$1"`, 'sh', probe], { encoding: 'utf8', timeout: 60000 }),
      );
    };
    const openFile = async (name) => {
      const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: name }).first();
      await row.waitFor({ timeout: 30000 });
      await row.dblclick();
      await page.waitForSelector('.part.editor .monaco-editor .view-lines', { timeout: 30000 });
      await waitFor(`${name} in the active editor`, 20000, async () => {
        const tab = page.locator('.part.editor .tab.active', { hasText: name });
        if ((await tab.count()) === 0) return false;
        return (await page.locator('.part.editor .monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ').includes('import sys');
      });
    };

    let loadingGhost = '';
    await step(`open the workspace and a Python file while the model loads (load delayed ${LOAD_DELAY_MS} ms), type`, async () => {
      await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
      await page.waitForSelector('.monaco-workbench', { timeout: 60000 });
      await page.waitForTimeout(1500);
      await openFile('loading.py');
      let label = '';
      await waitFor('the moat status item to say it is starting or loading', 30000, async () => {
        label = (await statusItem().count()) > 0 ? await statusLabel() : '';
        return /moat\*\*: (starting|loading the model)/.test(label);
      }).catch((e) => {
        throw new Error(`${e.message}; the status item says: ${label}`);
      });
      await page.locator('.part.editor .monaco-editor .view-lines').first().click();
      await page.keyboard.press(`${mod}+End`);
      await page.keyboard.type(TYPED, { delay: 60 });
      label = await statusLabel();
      if (!/moat\*\*: (starting|loading the model)/.test(label)) {
        throw new Error(`the model was ready before the typing ended (the scenario needs a longer delay): ${label}`);
      }
      return label.slice(0, 60);
    });

    await step('typing nothing more, the ghost text comes once the model is ready', async () => {
      const start = Date.now();
      loadingGhost = await waitFor('ghost text after the model is ready', 30000, ghostText);
      const label = await statusLabel();
      await page.screenshot({ path: path.join(artifacts, 'vscode-ghost-text-after-load.png') });
      if (!label.includes('moat**: ready')) throw new Error(`ghost text before the model is ready? status: ${label}`);
      const expected = reference(ORIGINAL + TYPED);
      if (expected.split('\n')[0] !== loadingGhost.split('\n')[0]) {
        throw new Error(`ghost text ${JSON.stringify(loadingGhost)} is not moat's suggestion ${JSON.stringify(expected)}`);
      }
      loadingGhost = expected;
      return `${JSON.stringify(loadingGhost)} ${((Date.now() - start) / 1000).toFixed(1)} s after the typing`;
    });

    await step('Tab accepts the suggestion made while loading; the saved file holds it', async () => {
      await page.keyboard.press('Tab');
      await page.waitForTimeout(300);
      await page.keyboard.press(`${mod}+S`);
      const expected = ORIGINAL + TYPED + loadingGhost;
      let saved = '';
      await waitFor('the saved file to hold the suggestion', 10000, () => (saved = fs.readFileSync(loadingFile, 'utf8')) === expected).catch(
        (e) => {
          throw new Error(`${e.message}; saved ${JSON.stringify(saved)}, expected ${JSON.stringify(expected)}`);
        },
      );
      await page.screenshot({ path: path.join(artifacts, 'vscode-accepted-after-load.png') });
    });

    await step('open the other Python file', async () => {
      await openFile('main.py');
    });

    await step('status bar item shows the model is ready', async () => {
      const item = page.locator('.statusbar-item', { hasText: 'moat' }).first();
      await waitFor('the moat status bar item', 30000, async () => (await item.count()) > 0);
      let aria = '';
      const label = await waitFor('moat to be ready', 30000, async () => {
        aria = (await item.getAttribute('aria-label')) || '';
        return aria.includes('moat**: ready') ? aria : false;
      }).catch((e) => {
        throw new Error(`${e.message}; the status item says: ${aria}`);
      });
      return label.replace(/\s+/g, ' ').slice(0, 100);
    });

    let ghost = '';
    await step('typing shows moat\'s ghost text', async () => {
      await page.locator('.part.editor .monaco-editor .view-lines').first().click();
      await page.keyboard.press(`${mod}+End`);
      await page.keyboard.type(TYPED, { delay: 60 });
      ghost = await waitFor('ghost text', 15000, ghostText);
      await page.screenshot({ path: path.join(artifacts, 'vscode-ghost-text.png') });
      // The same text a fresh moat gives for the same buffer (the model is deterministic).
      const expected = reference(ORIGINAL + TYPED);
      if (expected.split('\n')[0] !== ghost.split('\n')[0]) {
        throw new Error(`ghost text ${JSON.stringify(ghost)} is not moat's suggestion ${JSON.stringify(expected)}`);
      }
      ghost = expected;
      return JSON.stringify(ghost);
    });

    await step('Tab accepts it into the buffer', async () => {
      await page.keyboard.press('Tab');
      await page.waitForTimeout(300);
      await page.keyboard.press(`${mod}+S`);
      const expected = ORIGINAL + TYPED + ghost;
      await waitFor('the saved file to hold the suggestion', 10000, () => fs.readFileSync(file, 'utf8') === expected);
      await page.screenshot({ path: path.join(artifacts, 'vscode-accepted.png') });
    });

    await step('the server recorded the acceptance: VS Code ran the inline item\'s command', async () =>
      feedbackAccepted(tmp, waitFor),
    );

    await step('clicking the status bar item disables suggestions (moat.enable = false)', async () => {
      await page.locator('.statusbar-item', { hasText: 'moat' }).first().click();
      await waitFor('moat.enable false in settings.json', 10000, () => {
        const text = fs.readFileSync(settingsFile, 'utf8');
        return /"moat\.enable"\s*:\s*false/.test(text);
      });
      // No ghost text while disabled.
      await page.locator('.part.editor .monaco-editor .view-lines').first().click();
      await page.keyboard.press(`${mod}+End`);
      await page.keyboard.press('Enter');
      await page.keyboard.type('x = os.path.join(', { delay: 60 });
      await page.waitForTimeout(2000);
      const ghosts = await page.locator('.ghost-text-decoration').count();
      await page.screenshot({ path: path.join(artifacts, 'vscode-disabled.png') });
      if (ghosts !== 0) throw new Error('ghost text shown while moat is disabled');
    });

    await step('clicking it again enables them: the ghost text comes back', async () => {
      await page.locator('.statusbar-item', { hasText: 'moat' }).first().click();
      await waitFor('moat.enable true in settings.json', 10000, () =>
        /"moat\.enable"\s*:\s*true/.test(fs.readFileSync(settingsFile, 'utf8')),
      );
      await page.locator('.part.editor .monaco-editor .view-lines').first().click();
      await page.keyboard.press(`${mod}+End`);
      await page.keyboard.type('a', { delay: 60 });
      await waitFor('ghost text after enabling', 15000, async () => (await page.locator('.ghost-text-decoration').count()) > 0);
    });

    await codeActions.run({ page, step, waitFor, workspace, mod, artifacts });
  } finally {
    if (browser) await browser.close().catch(() => {});
    if (server) {
      server.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
      try {
        process.kill(server.pid, 0);
        server.kill('SIGKILL');
      } catch {}
    }
    fs.closeSync(serverLog);
  }
}

main()
  .then(() => process.exit(results.every(Boolean) ? 0 : 1))
  .catch((e) => {
    if (results.length === 0 || results.every(Boolean)) {
      console.log(`not ok - vscode: e2e setup: ${e && e.stack ? e.stack : e}`);
    }
    process.exit(1);
  });
