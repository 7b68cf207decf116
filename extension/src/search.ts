// "llmref: Search LLM Reference": a QuickPick with live results; every result comes from the
// server (llmref.search / llmref.show), the extension only shows them.
import * as vscode from "vscode";
import { ExecuteCommandRequest, LanguageClient } from "vscode-languageclient/node";
import { EntryPreview } from "./preview";

interface SearchResult {
  id: string;
  question: string;
  source: string;
  line: number;
  path: string;
  concepts: string[];
  concept_names?: string[];
}

interface ShowResult {
  id?: string;
  markdown?: string;
  error?: string;
}

interface ResultItem extends vscode.QuickPickItem {
  result: SearchResult;
}

async function execute<T>(client: LanguageClient, command: string, args: unknown[]): Promise<T> {
  return (await client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args })) as T;
}

const openSource: vscode.QuickInputButton = {
  iconPath: new vscode.ThemeIcon("go-to-file"),
  tooltip: "Open the corpus source at this question",
};

export async function openEntry(client: LanguageClient, preview: EntryPreview, result: SearchResult): Promise<void> {
  const shown = await execute<ShowResult>(client, "llmref.show", [result.id]);
  if (!shown.markdown) {
    void vscode.window.showWarningMessage(`llmref: ${shown.error ?? "could not show the entry"}`);
    return;
  }
  preview.show(result.question, shown.markdown);
}

export async function openSourceAt(result: SearchResult): Promise<void> {
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(result.path));
  const pos = new vscode.Position(Math.max(result.line - 1, 0), 0);
  await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos), preview: true });
}

export function searchUi(client: LanguageClient, preview: EntryPreview, initial = ""): void {
  const pick = vscode.window.createQuickPick<ResultItem>();
  pick.title = "llmref: Search LLM Reference";
  pick.placeholder = "KV cache, LlamaRMSNorm, 旋转位置编码, top-p …";
  pick.matchOnDescription = true;
  pick.matchOnDetail = true;
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;

  const update = (query: string) => {
    const mine = ++generation;
    if (!query.trim()) {
      pick.items = [];
      return;
    }
    pick.busy = true;
    execute<SearchResult[] | { error: string }>(client, "llmref.search", [query, 20]).then(
      (results) => {
        if (mine !== generation) {
          return; // a newer keystroke won
        }
        pick.busy = false;
        if (!Array.isArray(results)) {
          pick.items = [];
          pick.placeholder = `llmref: ${results.error}`;
          return;
        }
        pick.items = results.map((r) => ({
          label: r.question,
          description: (r.concept_names ?? r.concepts).slice(0, 3).join(", "),
          detail: `${r.source}:${r.line}`,
          alwaysShow: true, // the server has ranked them; do not let the client re-filter
          buttons: [openSource],
          result: r,
        }));
      },
      (err: unknown) => {
        pick.busy = false;
        pick.placeholder = `llmref: search failed (${String(err)})`;
      },
    );
  };

  pick.onDidChangeValue((value) => {
    if (timer) {
      clearTimeout(timer);
    }
    timer = setTimeout(() => update(value), 120);
  });
  pick.onDidTriggerItemButton((e) => {
    pick.hide();
    void openSourceAt(e.item.result);
  });
  pick.onDidAccept(() => {
    const chosen = pick.selectedItems[0];
    pick.hide();
    if (chosen) {
      void openEntry(client, preview, chosen.result);
    }
  });
  pick.onDidHide(() => pick.dispose());
  pick.value = initial;
  pick.show();
  if (initial) {
    update(initial);
  }
}
