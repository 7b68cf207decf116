// The entry preview: one webview tab beside the editor, titled with the question and reused
// for every entry the search opens.
//
// The markdown comes from the server's llmref.show: corpus text, untrusted. It is rendered
// here with raw HTML escaped, no images and no links but web (http, https) and file ones; the
// webview allows no command URIs and its content security policy loads nothing but its own
// style and script. A click on a link only posts the link's number: the extension opens the
// link it kept under that number, a file at its line in the editor (what the markdown
// preview cannot do in code-server: its links go through the browser) or a web page outside.
import { randomBytes } from "crypto";
import MarkdownIt from "markdown-it";
import * as vscode from "vscode";

export type LinkTarget = { kind: "file"; path: string; line: number } | { kind: "web"; url: string };

interface RenderEnv {
  links: LinkTarget[];
}

/** A web or file link as something to open, or undefined for any other link. */
export function linkTarget(href: string): LinkTarget | undefined {
  let uri: vscode.Uri;
  try {
    uri = vscode.Uri.parse(href, true);
  } catch {
    return undefined;
  }
  if (uri.scheme === "http" || uri.scheme === "https") {
    return { kind: "web", url: uri.toString(true) };
  }
  if (uri.scheme === "file" && uri.path) {
    const line = /^L(\d+)/i.exec(uri.fragment);
    return { kind: "file", path: uri.fsPath, line: line ? Number(line[1]) : 1 };
  }
  return undefined;
}

function markdownRenderer(): MarkdownIt {
  const md = new MarkdownIt({ html: false, linkify: false, typographer: false });
  md.disable("image"); // never load an image (the server sends none; this makes sure)
  md.validateLink = (url) => /^(https?|file):/i.test(url.trim());
  md.renderer.rules.link_open = (tokens, idx, options, env: RenderEnv, self) => {
    const token = tokens[idx];
    const target = linkTarget(token.attrGet("href") ?? "");
    if (target) {
      env.links.push(target);
      const title = target.kind === "file" ? `${target.path}:${target.line}` : target.url;
      token.attrs = [
        ["href", token.attrGet("href") ?? "#"],
        ["data-link", String(env.links.length - 1)],
        ["title", title],
      ];
    } else {
      token.attrs = [];
    }
    return self.renderToken(tokens, idx, options);
  };
  return md;
}

/** The entry's markdown as HTML, and the links it holds (data-link="n" is links[n]). */
export function renderEntry(markdown: string): { html: string; links: LinkTarget[] } {
  const env: RenderEnv = { links: [] };
  const html = markdownRenderer().render(markdown, env);
  return { html, links: env.links };
}

const STYLE = `
body { font-family: var(--vscode-markdown-font-family, var(--vscode-font-family)); font-size: var(--vscode-markdown-font-size, 14px);
  line-height: 1.6; color: var(--vscode-foreground); padding: 0 26px 26px; max-width: 60em; word-wrap: break-word; }
h1 { font-size: 1.6em; border-bottom: 1px solid var(--vscode-widget-border, rgba(128,128,128,.35)); padding-bottom: .3em; }
a { color: var(--vscode-textLink-foreground); text-decoration: none; }
a:hover, a:focus { color: var(--vscode-textLink-activeForeground); text-decoration: underline; }
code, pre { font-family: var(--vscode-editor-font-family); font-size: .95em; }
code { background: var(--vscode-textCodeBlock-background); padding: .1em .3em; border-radius: 3px; }
pre { background: var(--vscode-textCodeBlock-background); padding: 12px 16px; overflow: auto; border-radius: 3px; }
pre code { background: none; padding: 0; }
table { border-collapse: collapse; } th, td { border: 1px solid var(--vscode-widget-border, rgba(128,128,128,.35)); padding: 4px 8px; }
blockquote { margin: 0; padding: 0 1em; border-left: 4px solid var(--vscode-textBlockQuote-border, rgba(128,128,128,.5)); }
`;

// every click on a link is ours: it must not reach the webview host (whose handler would hand
// a file: link to the browser), and only the link's number goes to the extension
const SCRIPT = `
const vscode = acquireVsCodeApi();
document.addEventListener("click", (event) => {
  const a = event.target instanceof Element ? event.target.closest("a") : null;
  if (!a) return;
  event.preventDefault();
  event.stopPropagation();
  const n = a.getAttribute("data-link");
  if (n !== null) vscode.postMessage({ open: Number(n) });
});
`;

function page(body: string, cspSource: string): string {
  const nonce = randomBytes(16).toString("base64");
  const csp = `default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';`;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${nonce}">${STYLE}</style></head>
<body>${body}<script nonce="${nonce}">${SCRIPT}</script></body></html>`;
}

/** A tab title from a question: one line, at most about 60 characters. */
export function tabTitle(question: string): string {
  const line = question.replace(/\s+/g, " ").trim();
  const chars = Array.from(line);
  return chars.length > 60 ? chars.slice(0, 59).join("") + "…" : line || "llmref";
}

export class EntryPreview implements vscode.Disposable {
  static readonly viewType = "llmref.entry";
  private panel: vscode.WebviewPanel | undefined;
  private links: LinkTarget[] = [];
  private editorColumn: vscode.ViewColumn | undefined;

  /** Show an entry: in the preview tab when there is one (wherever it was moved), else in a
   * new one beside the editor. */
  show(question: string, markdown: string): void {
    const active = vscode.window.activeTextEditor?.viewColumn;
    if (active !== undefined && active !== this.panel?.viewColumn) {
      this.editorColumn = active; // where source links open
    }
    if (this.panel) {
      this.panel.reveal(this.panel.viewColumn, true);
    } else {
      const panel = vscode.window.createWebviewPanel(
        EntryPreview.viewType,
        "llmref",
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, enableCommandUris: false, enableFindWidget: true, localResourceRoots: [] },
      );
      panel.onDidDispose(() => {
        if (this.panel === panel) {
          this.panel = undefined;
        }
      });
      panel.webview.onDidReceiveMessage((message: { open?: unknown }) => {
        const target = typeof message.open === "number" ? this.links[message.open] : undefined;
        if (target) {
          void this.open(target);
        }
      });
      this.panel = panel;
    }
    const { html, links } = renderEntry(markdown);
    this.links = links;
    this.panel.title = tabTitle(question);
    this.panel.webview.html = page(html, this.panel.webview.cspSource);
  }

  private sourceColumn(): vscode.ViewColumn {
    const previewColumn = this.panel?.viewColumn;
    if (this.editorColumn !== undefined && this.editorColumn !== previewColumn) {
      return this.editorColumn;
    }
    const other = vscode.window.tabGroups.all.find((g) => g.viewColumn !== previewColumn);
    return other?.viewColumn ?? vscode.ViewColumn.Beside;
  }

  private async open(target: LinkTarget): Promise<void> {
    if (target.kind === "web") {
      await vscode.env.openExternal(vscode.Uri.parse(target.url, true));
      return;
    }
    try {
      const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(target.path));
      const pos = new vscode.Position(Math.max(target.line - 1, 0), 0);
      await vscode.window.showTextDocument(doc, {
        viewColumn: this.sourceColumn(),
        selection: new vscode.Range(pos, pos),
        preview: true,
      });
    } catch (err) {
      void vscode.window.showWarningMessage(`llmref: could not open ${target.path}: ${String(err)}`);
    }
  }

  dispose(): void {
    this.panel?.dispose();
  }
}
