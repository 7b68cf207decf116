// The llmref extension: starts the language server and adds commands. No search logic here:
// hovers, completion, search and entries all come from the server.
import * as vscode from "vscode";
import {
  CloseAction,
  CloseHandlerResult,
  ErrorAction,
  ErrorHandlerResult,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";
import { EntryPreview } from "./preview";
import { searchUi } from "./search";
import { NoPythonError, serverCommand } from "./server";

let client: LanguageClient | undefined;
let log: vscode.LogOutputChannel;

function initializationOptions(): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration("llmref");
  return {
    corpus: c.get<string[]>("corpus", []),
    exclude: c.get<string[]>("exclude", []),
    maxFileMB: c.get<number>("maxFileMB", 5),
    languages: c.get<string[]>("languages"),
    hover: { enabled: c.get<boolean>("hover.enabled", true), maxLines: c.get<number>("hover.maxLines", 12) },
    completion: { enabled: c.get<boolean>("completion.enabled", true), snippets: c.get<boolean>("completion.snippets", true) },
  };
}

async function openSettings(): Promise<void> {
  await vscode.commands.executeCommand("workbench.action.openSettings", "llmref.python.interpreter");
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  let cmd;
  try {
    cmd = await serverCommand(context, log);
  } catch (err) {
    if (err instanceof NoPythonError) {
      log.error(err.message);
      const action = await vscode.window.showErrorMessage(err.message, "Open Settings");
      if (action === "Open Settings") {
        await openSettings();
      }
      return;
    }
    throw err;
  }
  log.info(`starting the server: ${cmd.description}`);
  const serverOptions: ServerOptions = {
    command: cmd.command,
    args: cmd.args,
    transport: TransportKind.stdio, // appends --stdio, which `llmref serve` accepts
    options: { env: cmd.env },
  };
  const clientOptions: LanguageClientOptions = {
    // every file goes to the server; its `languages` option decides where cards appear, so a
    // settings change needs no reload
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: initializationOptions(),
    synchronize: { configurationSection: "llmref" },
    outputChannel: log,
    markdown: { isTrusted: false, supportHtml: false }, // corpus text is untrusted
    errorHandler: {
      error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
      closed: (): CloseHandlerResult => {
        const message = "The llmref server stopped. The llmref output has the details.";
        log.error(message);
        void vscode.window.showErrorMessage(message, "Restart", "Show Output").then((choice) => {
          if (choice === "Restart") {
            void vscode.commands.executeCommand("llmref.restart");
          } else if (choice === "Show Output") {
            log.show();
          }
        });
        return { action: CloseAction.DoNotRestart, handled: true };
      },
    },
  };
  client = new LanguageClient("llmref", "llmref", serverOptions, clientOptions);
  client.onDidChangeState((e) => log.info(`server state: ${State[e.oldState]} -> ${State[e.newState]}`));
  try {
    await client.start();
  } catch (err) {
    log.error(`the server did not start: ${String(err)}`);
    const choice = await vscode.window.showErrorMessage(
      `llmref: the server did not start (${String(err)}).`,
      "Open Settings",
      "Show Output",
    );
    if (choice === "Open Settings") {
      await openSettings();
    } else if (choice === "Show Output") {
      log.show();
    }
  }
}

function running(): LanguageClient | undefined {
  if (client && client.state === State.Running) {
    return client;
  }
  void vscode.window.showWarningMessage("llmref: the server is not running (see llmref: Show Output).");
  return undefined;
}

/** The word under the cursor, or the selection: identifiers and runs of Chinese characters. */
function termUnderCursor(editor: vscode.TextEditor): string {
  if (!editor.selection.isEmpty) {
    return editor.document.getText(editor.selection);
  }
  const range = editor.document.getWordRangeAtPosition(editor.selection.active, /[A-Za-z0-9_\-]+|[\u3400-\u9fff]+/);
  return range ? editor.document.getText(range) : "";
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  log = vscode.window.createOutputChannel("llmref", { log: true });
  const preview = new EntryPreview();
  context.subscriptions.push(
    log,
    preview,
    vscode.commands.registerCommand("llmref.searchUi", () => {
      const c = running();
      if (c) {
        searchUi(c, preview);
      }
    }),
    vscode.commands.registerCommand("llmref.lookUp", () => {
      const c = running();
      const editor = vscode.window.activeTextEditor;
      if (c) {
        searchUi(c, preview, editor ? termUnderCursor(editor) : "");
      }
    }),
    vscode.commands.registerCommand("llmref.rebuildIndex", async () => {
      const c = running();
      if (c) {
        await c.sendRequest(ExecuteCommandRequest.type, { command: "llmref.reindex", arguments: [] });
        void vscode.window.showInformationMessage("llmref: rebuilding the index…");
      }
    }),
    vscode.commands.registerCommand("llmref.restart", async () => {
      if (client) {
        const old = client;
        client = undefined;
        await old.stop().catch(() => undefined);
      }
      await start(context);
    }),
    vscode.commands.registerCommand("llmref.showOutput", () => log.show()),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      // the interpreter or command changed: a new server; other settings reach the running
      // server through workspace/didChangeConfiguration
      if (e.affectsConfiguration("llmref.python.interpreter") || e.affectsConfiguration("llmref.server.command")) {
        await vscode.commands.executeCommand("llmref.restart");
      }
    }),
  );
  await start(context);
}

export async function deactivate(): Promise<void> {
  await client?.stop();
}
