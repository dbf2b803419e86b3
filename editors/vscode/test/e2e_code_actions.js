// Code actions in VS Code (issue 14), as steps of test/e2e.js: in a Python file, Ctrl+. opens
// the Quick Fix / code action menu, which lists moat's actions; choosing "write the doc comment"
// makes VS Code resolve it (codeAction/resolve: the edit is computed only now) and apply the
// edit; the saved file holds the docstring. A lightbulb shows on the line first.
'use strict';
const fs = require('fs');
const path = require('path');

const ORIGINAL = 'def area(width, height):\n    return width * height\n';
const NAME = 'actions.py';

/// Writes the file the steps open (before code-server starts, so the explorer lists it).
function prepare(workspace) {
  fs.writeFileSync(path.join(workspace, NAME), ORIGINAL);
}

async function run({ page, step, waitFor, workspace, mod, artifacts }) {
  const file = path.join(workspace, NAME);
  // The editor's text (Monaco renders spaces as no-break spaces).
  const editorText = async () =>
    (await page.locator('.part.editor .monaco-editor .view-lines').first().innerText()).replace(/\u00a0/g, ' ');
  await step('code action: open a Python file, put the cursor in a function', async () => {
    const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: NAME }).first();
    await row.waitFor({ timeout: 30000 });
    await row.dblclick();
    await waitFor(`${NAME} in the active editor`, 20000, async () => {
      const tab = page.locator('.part.editor .tab.active', { hasText: NAME });
      if ((await tab.count()) === 0) return false;
      return (await editorText()).includes('width * height');
    });
    const editor = page.locator('.part.editor .monaco-editor .view-lines').first();
    await editor.click();
    await page.keyboard.press(`${mod}+Home`);
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('End');
    // The lightbulb comes when the server offers actions at the cursor.
    await waitFor('the lightbulb', 15000, async () => (await page.locator('.lightBulbWidget, .lightbulb-glyph').count()) > 0).catch(() => {});
  });

  await step('code action: Ctrl+. lists moat\'s actions; choosing one applies its edit', async () => {
    const menuItem = () => page.locator('.action-widget .monaco-list-row', { hasText: 'write the doc comment of' }).first();
    await waitFor('moat\'s actions in the Ctrl+. menu', 20000, async () => {
      if ((await menuItem().count()) > 0) return true;
      await page.keyboard.press('Escape');
      await page.keyboard.press(`${mod}+Period`);
      await page.waitForTimeout(1500);
      return (await menuItem().count()) > 0;
    });
    const titles = (await page.locator('.action-widget .monaco-list-row').allInnerTexts()).map((t) => t.trim()).filter(Boolean);
    await page.screenshot({ path: path.join(artifacts, 'vscode-code-action-menu.png') });
    await menuItem().click();
    await waitFor('the docstring in the editor', 30000, async () =>
      (await editorText()).includes('"""'),
    );
    await page.keyboard.press(`${mod}+S`);
    let saved = '';
    await waitFor('the saved file to hold the docstring', 10000, () => {
      saved = fs.readFileSync(file, 'utf8');
      return /^def area\(width, height\):\n {4}"""/.test(saved) && saved.endsWith('    return width * height\n');
    }).catch((e) => {
      throw new Error(`${e.message}; saved ${JSON.stringify(saved)}`);
    });
    await page.screenshot({ path: path.join(artifacts, 'vscode-code-action-applied.png') });
    return `menu ${JSON.stringify(titles)}; saved ${JSON.stringify(saved.split('\n')[1])}`;
  });
}

module.exports = { prepare, run };
