// moat for VS Code: starts `moat serve` and shows its suggestions as ghost text through the
// language client's LSP 3.18 inline completion support (textDocument/inlineCompletion).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from 'vscode-languageclient/node';

const LANGUAGES = [
  'python',
  'rust',
  'javascript',
  'javascriptreact',
  'typescript',
  'typescriptreact',
  'go',
  'java',
  'c',
  'cpp',
  'json',
  'jsonc',
  'toml',
  'shellscript',
];

/** The server's settings (section `moat`), by name. Extension-only keys are not sent. */
const SERVER_KEYS = [
  'enable',
  'modelPath',
  'onnxruntimePath',
  'debounceMs',
  'loadWaitMs',
  'maxTokens',
  'threads',
  'prefixTokens',
  'suffixTokens',
  'multiline',
  'maxLines',
  'skipInComments',
  'skipInStrings',
  'enabledLanguages',
  'disabledLanguages',
];

type ServerState = 'starting' | 'loading' | 'ready' | 'error' | 'stopped';

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let statusItem: vscode.StatusBarItem;
let serverState: ServerState = 'stopped';
let serverMessage = '';
/** The workspace index's last `moat/status` (indexing/indexed): shown beside the model's, never over it. */
let indexMessage = '';

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('moat');
}

function enabled(): boolean {
  return config().get<boolean>('enable', true);
}

/** The `moat` section as the server reads it: only what the user set (the server has defaults). */
export function serverSettings(): Record<string, unknown> {
  const cfg = config();
  const settings: Record<string, unknown> = {};
  for (const key of SERVER_KEYS) {
    const i = cfg.inspect(key);
    const value =
      i?.workspaceFolderLanguageValue ??
      i?.workspaceLanguageValue ??
      i?.globalLanguageValue ??
      i?.workspaceFolderValue ??
      i?.workspaceValue ??
      i?.globalValue;
    if (value === undefined || value === null || value === '') {
      continue;
    }
    settings[key] = typeof value === 'string' && key.endsWith('Path') ? expandHome(value) : value;
  }
  settings.enable = enabled();
  return settings;
}

function expandHome(p: string): string {
  return p.startsWith('~/') ? path.join(os.homedir(), p.slice(2)) : p;
}

/** The moat binary: the setting, else `moat` on PATH, else the usual install folders. */
function serverCommand(): string {
  const configured = expandHome(config().get<string>('serverPath', 'moat') || 'moat');
  if (configured !== 'moat') {
    return configured;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, 'moat'))) {
      return path.join(dir, 'moat');
    }
  }
  for (const candidate of [
    path.join(os.homedir(), '.local', 'bin', 'moat'),
    path.join(os.homedir(), '.cargo', 'bin', 'moat'),
  ]) {
    if (isExecutable(candidate)) {
      return candidate;
    }
  }
  return 'moat';
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function updateStatus(): void {
  if (!statusItem) {
    return;
  }
  let icon: string;
  let text: string;
  if (!enabled()) {
    icon = '$(circle-slash)';
    text = 'disabled (click to enable)';
  } else {
    switch (serverState) {
      case 'ready':
        icon = '$(sparkle)';
        text = 'ready';
        break;
      case 'loading':
      case 'starting':
        icon = '$(sync~spin)';
        text = serverState === 'loading' ? 'loading the model' : 'starting';
        break;
      case 'error':
        icon = '$(error)';
        text = 'error';
        break;
      default:
        icon = '$(debug-stop)';
        text = 'stopped';
    }
  }
  statusItem.text = `${icon} moat`;
  const detail = [serverMessage, indexMessage].filter((m) => m).map((m) => `\n\n${m}`).join('');
  statusItem.tooltip = new vscode.MarkdownString(
    `**moat**: ${text}${detail.replace(/\n/g, '  \n')}\n\nClick to ${enabled() ? 'disable' : 'enable'} suggestions.`,
  );
  statusItem.backgroundColor =
    enabled() && serverState === 'error'
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : undefined;
  statusItem.show();
}

/** The user typed in a moat document while the model was not ready yet. */
let typedWhileLoading = false;

/**
 * The model just became ready. Requests made while it loaded are answered by the server once it is
 * ready; if the user typed meanwhile, ask again for ghost text at the cursor too, so a suggestion
 * comes without another keystroke even where VS Code dropped the earlier request.
 */
function retriggerAfterLoad(): void {
  const editor = vscode.window.activeTextEditor;
  const typed = typedWhileLoading;
  typedWhileLoading = false;
  if (!typed || !enabled() || !editor || !editor.selection.isEmpty) {
    return;
  }
  if (!LANGUAGES.includes(editor.document.languageId)) {
    return;
  }
  void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
}

function setState(state: ServerState, message = ''): void {
  serverState = state;
  serverMessage = message;
  updateStatus();
}

function createClient(): LanguageClient {
  const command = serverCommand();
  const serverOptions: ServerOptions = {
    command,
    args: ['serve'],
    transport: TransportKind.stdio,
    options: { env: { ...process.env } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: 'file', language },
      { scheme: 'untitled', language },
    ]),
    initializationOptions: { moat: serverSettings() },
    outputChannel: output,
    traceOutputChannel: output,
    middleware: {
      provideInlineCompletionItems: (document, position, context, token, next) => {
        if (!enabled()) {
          return null;
        }
        return next(document, position, context, token);
      },
      provideCompletionItem: (document, position, context, token, next) => {
        if (!enabled() || !config().get<boolean>('completionMenu', false)) {
          return null;
        }
        return next(document, position, context, token);
      },
    },
  };
  const c = new LanguageClient('moat', 'moat', serverOptions, clientOptions);
  c.onNotification('moat/status', (params: { state?: string; message?: string }) => {
    const state = params?.state;
    const message = params?.message ?? '';
    if (state === 'ready' || state === 'loading' || state === 'error') {
      const wasReady = serverState === 'ready';
      setState(state, message);
      if (state === 'ready' && !wasReady) {
        retriggerAfterLoad();
      }
    } else {
      indexMessage = message;
      updateStatus();
    }
    output.info(`moat/status: ${state} ${message}`);
  });
  c.onDidChangeState((e) => {
    if (e.newState === State.Stopped) {
      setState(serverState === 'error' ? 'error' : 'stopped', serverMessage);
    } else if (e.newState === State.Starting) {
      setState('starting', `${command} serve`);
    }
  });
  return c;
}

async function startClient(): Promise<void> {
  client = createClient();
  setState('starting');
  try {
    await client.start();
  } catch (e) {
    const message = `cannot start \`${serverCommand()} serve\`: ${e instanceof Error ? e.message : String(e)}`;
    output.error(message);
    setState('error', message + '\nSet `moat.serverPath` to the moat binary.');
  }
}

async function stopClient(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) {
    try {
      await c.stop(5000);
    } catch (e) {
      output.warn(`stopping the server: ${String(e)}`);
    }
  }
}

async function setEnabled(value: boolean): Promise<void> {
  const i = config().inspect('enable');
  const target =
    i?.workspaceFolderValue !== undefined
      ? vscode.ConfigurationTarget.WorkspaceFolder
      : i?.workspaceValue !== undefined
        ? vscode.ConfigurationTarget.Workspace
        : vscode.ConfigurationTarget.Global;
  await config().update('enable', value, target);
  updateStatus();
}

/** What other extensions and the tests can reach. */
export interface MoatApi {
  state(): ServerState;
  client(): LanguageClient | undefined;
}

export async function activate(context: vscode.ExtensionContext): Promise<MoatApi> {
  output = vscode.window.createOutputChannel('moat', { log: true });
  statusItem = vscode.window.createStatusBarItem('moat.status', vscode.StatusBarAlignment.Right, 100);
  statusItem.name = 'moat';
  statusItem.command = 'moat.toggle';
  context.subscriptions.push(output, statusItem);

  context.subscriptions.push(
    vscode.commands.registerCommand('moat.toggle', () => setEnabled(!enabled())),
    vscode.commands.registerCommand('moat.enable', () => setEnabled(true)),
    vscode.commands.registerCommand('moat.disable', () => setEnabled(false)),
    vscode.commands.registerCommand('moat.restart', async () => {
      await stopClient();
      await startClient();
    }),
    vscode.commands.registerCommand('moat.showLog', () => output.show()),
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (
        serverState !== 'ready' &&
        e.contentChanges.length > 0 &&
        e.document === vscode.window.activeTextEditor?.document &&
        LANGUAGES.includes(e.document.languageId)
      ) {
        typedWhileLoading = true;
      }
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      if (!e.affectsConfiguration('moat')) {
        return;
      }
      updateStatus();
      if (e.affectsConfiguration('moat.serverPath')) {
        await stopClient();
        await startClient();
        return;
      }
      if (client && client.state === State.Running) {
        await client.sendNotification('workspace/didChangeConfiguration', {
          settings: { moat: serverSettings() },
        });
      }
    }),
  );

  updateStatus();
  await startClient();
  return {
    state: () => serverState,
    client: () => client,
  };
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
