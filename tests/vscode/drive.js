// Drive code-server (real VS Code) in headless Debian chromium through playwright-core, as a
// person would: open files from the explorer, hover words, type, use the command palette.
// Started by run.sh, which sets PORT, WORKSPACE (a folder with model.py and notes.md),
// ARTIFACTS (screenshots), CS_USER_DATA (code-server's user data, for its logs) and
// CHROME_HOME (a scratch dir for chromium's profile). Steps: hover-code, hover-notes,
// completion, search, entry (needs search: the preview, its Source link, a second entry in the
// same tab); no-python (the no-Python error and its "Open Settings" button) runs only when
// named in LLMREF_VSCODE_STEPS. Each step saves <step>.png (fail-<step>.png when it fails).
// Exit 0 only if every step passed.
"use strict";
const { chromium } = require("playwright-core");
const fs = require("fs");
const path = require("path");

const PORT = process.env.PORT;
const WORKSPACE = process.env.WORKSPACE;
const OUT = process.env.ARTIFACTS;
const USER_DATA = process.env.CS_USER_DATA || "";
const CHROME_HOME = process.env.CHROME_HOME || fs.mkdtempSync("/tmp/llmref-chromium-");
const ONLY = (process.env.LLMREF_VSCODE_STEPS || "").split(",").filter(Boolean);
fs.mkdirSync(OUT, { recursive: true });
fs.mkdirSync(CHROME_HOME, { recursive: true });

const t0 = Date.now();
const lap = (m) => console.log(`[drive ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${m}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const oneLine = (s, n = 200) => JSON.stringify(String(s).replace(/\s+/g, " ").slice(0, n));

/** Poll fn() until it returns a truthy value or the time is up (then throw `what`). */
async function until(what, timeoutMs, fn, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}` + (last instanceof Error ? ` (${last.message})` : ""));
}

/** Screen point at the middle of `word` in the visible editor's text (CJK-safe: a DOM Range). */
async function wordPoint(page, word) {
  return page.evaluate((word) => {
    for (const line of document.querySelectorAll(".editor-instance .monaco-editor .view-lines .view-line")) {
      const r0 = line.getBoundingClientRect();
      if (!r0.width || !r0.height) continue;
      const text = line.textContent.replace(/\u00a0/g, " ");
      const at = text.indexOf(word);
      if (at < 0) continue;
      const mid = at + Math.floor(word.length / 2);
      const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
      let seen = 0;
      for (let n = walker.nextNode(); n; n = walker.nextNode()) {
        const len = n.data.length;
        if (mid < seen + len) {
          const range = document.createRange();
          range.setStart(n, mid - seen);
          range.setEnd(n, mid - seen + 1);
          const r = range.getBoundingClientRect();
          return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
        }
        seen += len;
      }
    }
    return null;
  }, word);
}

async function openFromExplorer(page, name) {
  const row = page.locator(`.explorer-folders-view .monaco-list-row[aria-label^="${name}"]`).first();
  await row.waitFor({ timeout: 30000 });
  await row.click();
  await until(`${name} in the active tab`, 20000, async () => {
    const tab = await page.locator(".tabs-container .tab.active").first().innerText();
    return tab.replace(/\s+/g, "").includes(name); // "model .py": name and suffix are two spans
  });
  await page.locator(".editor-instance .monaco-editor .view-lines").first().waitFor({ timeout: 20000 });
}

/** Hover `word` (retrying: the server may still be starting) until the hover contains `want`. */
async function hoverUntil(page, word, want, timeoutMs) {
  let seen = "";
  return until(`a hover over ${word} containing ${JSON.stringify(want)} (last hover: ${oneLine(seen)})`, timeoutMs, async () => {
    const p = await wordPoint(page, word);
    if (!p) throw new Error(`${word} not on screen`);
    // leave the word and close any hover (an early "Indexing the corpus…" card would
    // otherwise stay up without a new request), then come back
    await page.mouse.move(p.x, p.y + 250);
    await page.keyboard.press("Escape");
    await sleep(700);
    await page.mouse.move(p.x, p.y);
    const hover = page.locator(".monaco-hover:visible").first();
    try {
      await page.locator(".monaco-hover .monaco-hover-content").filter({ hasText: want }).first().waitFor({ state: "visible", timeout: 2500 });
    } catch (_) {
      seen = (await hover.isVisible()) ? await hover.innerText() : "";
      return null;
    }
    return page.locator(".monaco-hover .monaco-hover-content").filter({ hasText: want }).first().innerText();
  }, 0);
}

async function resetFocus(page) {
  await page.mouse.move(5, 400);
  for (let i = 0; i < 3; i++) await page.keyboard.press("Escape");
}

async function runCommand(page, title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.type(title.replace(/^>/, ""));
  const row = page.locator(".quick-input-widget .monaco-list-row").filter({ hasText: title }).first();
  await row.waitFor({ state: "visible", timeout: 10000 });
  await page.keyboard.press("Enter");
}

/** The webview frame (a webview is nested iframes) whose text contains `want`. */
async function previewFrame(page, want) {
  return until(`a preview showing ${JSON.stringify(want)}`, 30000, async () => {
    for (const frame of page.frames()) {
      const text = await frame.evaluate(() => (document.body ? document.body.innerText : "")).catch(() => "");
      if (text.includes(want) && !(await frame.evaluate(() => !!document.querySelector("iframe")).catch(() => true))) return frame;
    }
    return null;
  });
}

/** Check the editor tabs (titles, and how many editor groups) until they are as wanted, and
 * return the tab titles. */
async function expectTabs(page, { has, hasNot, groups }) {
  let seen = [];
  let count = 0;
  await until(`editor tabs${has ? ` with ${JSON.stringify(has)}` : ""}${hasNot ? ` without ${JSON.stringify(hasNot)}` : ""} in ${groups} groups`, 10000, async () => {
    seen = (await page.locator(".tabs-container .tab").allInnerTexts()).map((t) => t.replace(/\s+/g, " ").trim());
    count = await page.locator(".editor-group-container").count();
    if (has && !seen.some((t) => t.includes(has))) return false;
    if (hasNot && seen.some((t) => t.includes(hasNot))) return false;
    return count === groups;
  }).catch((e) => {
    throw new Error(`${e.message}; tabs: ${oneLine(seen.join(" | "), 300)}; groups: ${count}`);
  });
  return seen;
}

// ---- the steps -----------------------------------------------------------------------------

const steps = {
  async "hover-code"(page) {
    await openFromExplorer(page, "model.py");
    const text = await hoverUntil(page, "LlamaRMSNorm", "RMS Norm", 60000);
    lap(`hover on LlamaRMSNorm: ${oneLine(text)}`);
    await page.screenshot({ path: path.join(OUT, "hover-code.png") });
  },

  async "hover-notes"(page) {
    await resetFocus(page);
    await openFromExplorer(page, "notes.md");
    const text = await hoverUntil(page, "旋转位置编码", "RoPE", 45000);
    lap(`hover on 旋转位置编码: ${oneLine(text)}`);
    await page.screenshot({ path: path.join(OUT, "hover-notes.png") });
  },

  async completion(page) {
    await resetFocus(page);
    await openFromExplorer(page, "model.py");
    const editor = page.locator(".editor-instance .monaco-editor .view-lines").first();
    await editor.click();
    await page.keyboard.press("Control+End");
    await page.keyboard.type("RMSN", { delay: 50 });
    const widget = page.locator(".suggest-widget");
    const rows = page.locator(".suggest-widget .monaco-list-row");
    const labels = async () => (await widget.isVisible()) ? rows.locator(".label-name").allInnerTexts() : [];
    // quick suggestions may have opened the widget already; else ask for it (retry while the
    // server's answer is not there yet)
    await until("a suggest widget listing RMSNorm", 30000, async () => {
      await sleep(700);
      if ((await labels()).some((l) => l.startsWith("RMSNorm"))) return true;
      if (await widget.isVisible()) await page.keyboard.press("Escape");
      await page.keyboard.press("Control+Space");
      await rows.first().waitFor({ state: "visible", timeout: 3000 }).catch(() => {});
      return (await labels()).some((l) => l.startsWith("RMSNorm"));
    }, 0);
    lap(`completion rows: ${oneLine((await labels()).join(" | "), 300)}`);
    // focus the RMSNorm row
    await until("the RMSNorm row focused", 10000, async () => {
      const f = page.locator(".suggest-widget .monaco-list-row.focused .label-name").first();
      const label = (await f.count()) ? await f.innerText() : "";
      if (label.startsWith("RMSNorm")) return true;
      await page.keyboard.press("ArrowDown");
      return false;
    }, 150);
    // the details card: shown already, or toggled by Control+Space (VS Code's "read more")
    const details = page.locator(".suggest-details").filter({ hasText: "RMS Norm" }).first();
    const shown = async (ms) => details.waitFor({ state: "visible", timeout: ms }).then(() => true, () => false);
    if (!(await shown(2000))) {
      await page.keyboard.press("Control+Space");
      if (!(await shown(5000))) {
        const any = page.locator(".suggest-details").first();
        const txt = (await any.isVisible()) ? await any.innerText() : "(no details pane)";
        throw new Error(`completion details do not show "RMS Norm": ${oneLine(txt)}`);
      }
    }
    lap(`completion details: ${oneLine(await details.innerText())}`);
    await page.screenshot({ path: path.join(OUT, "completion.png") });
    // leave model.py as it was
    await page.keyboard.press("Escape");
    for (let i = 0; i < 4; i++) await page.keyboard.press("Backspace");
  },

  async search(page) {
    await resetFocus(page);
    await runCommand(page, "llmref: Search LLM Reference");
    await until("the llmref search QuickPick", 10000, async () => {
      const title = page.locator(".quick-input-widget .quick-input-title");
      const t = (await title.isVisible()) ? await title.innerText() : "";
      const ph = await page.locator(".quick-input-widget .quick-input-box input").getAttribute("placeholder");
      return /llmref/i.test(t) || /KV cache/i.test(ph || "");
    });
    await page.keyboard.type("KV cache", { delay: 30 });
    const first = page.locator('.quick-input-widget .quick-input-list .monaco-list-row[data-index="0"]');
    let label = "";
    await until(`first search result containing "Kv cache 技术" (first row: ${oneLine(label)})`, 30000, async () => {
      label = (await first.isVisible()) ? await first.innerText() : "";
      return label.includes("Kv cache 技术");
    });
    lap(`first search result: ${oneLine(label)}`);
    await page.screenshot({ path: path.join(OUT, "search.png") });
  },

  // Enter on the first result: the entry preview (a webview tab beside the editor, titled with
  // the question); its Source link opens the corpus file at the line; a second search reuses
  // the same preview tab (no third column).
  async entry(page) {
    const want = "Kv cache 技术（Key-Value Cache）";
    await page.keyboard.press("Enter");
    const preview = await previewFrame(page, want);
    lap(`entry preview: ${oneLine(await preview.evaluate(() => document.body.innerText), 160)}`);
    await expectTabs(page, { has: "什么是 Kv cache 技术", groups: 2 });
    await sleep(500);
    await page.screenshot({ path: path.join(OUT, "entry.png") });

    // the Source link: the corpus file, at the question's line, in the editor column
    const source = "llm-interview-104-questions.md:180";
    const link = preview.locator("a", { hasText: source }).first();
    await link.waitFor({ state: "visible", timeout: 5000 });
    await link.click();
    let clicks = 1;
    let clickedAt = Date.now();
    const where = await until(`${source} open in the editor at line 180`, 20000, async () => {
      const tab = await page.locator(".tabs-container .tab.active").allInnerTexts();
      const cursor = page.locator('.statusbar-item[id="status.editor.selection"]').first();
      const ln = (await cursor.isVisible()) ? await cursor.innerText() : "";
      const ok = tab.some((t) => t.replace(/\s+/g, "").includes("llm-interview-104-questions.md")) && /Ln 180\b/.test(ln);
      if (!ok && clicks < 3 && Date.now() - clickedAt > 5000) {
        // a click that lands while the webview is still settling opens nothing (seen once
        // in a CI run): click again, as a user would
        await link.click();
        clicks += 1;
        clickedAt = Date.now();
      }
      return ok ? `${ln}; active tabs ${tab.map((t) => t.replace(/\s+/g, " ").trim()).join(" | ")} (${clicks} click(s))` : null;
    });
    const lineText = await until("the question on screen", 5000, async () => {
      const lines = await page.locator(".editor-instance .monaco-editor .view-lines .view-line").allInnerTexts();
      return lines.map((l) => l.replace(/\u00a0/g, " ")).find((l) => l.includes("什么是 Kv cache 技术")) || null;
    });
    lap(`source link opened: ${where}; ${oneLine(lineText, 80)}`);
    await expectTabs(page, { groups: 2 });
    await page.screenshot({ path: path.join(OUT, "entry-source.png") });

    // a second entry replaces the first in the same preview tab
    await resetFocus(page);
    await runCommand(page, "llmref: Search LLM Reference");
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.waitFor({ state: "visible", timeout: 10000 });
    // type only once the search box has the focus (under load it shows before it takes it)
    await until("the search box focused", 10000, async () => input.evaluate((el) => el === document.activeElement));
    await page.keyboard.type("旋转位置编码", { delay: 30 });
    const first = page.locator('.quick-input-widget .quick-input-list .monaco-list-row[data-index="0"]');
    await until("a first result about 旋转位置编码", 30000, async () => ((await first.isVisible()) ? (await first.innerText()).includes("旋转位置编码") : false));
    await page.keyboard.press("Enter");
    const second = await previewFrame(page, "Rotary Position Embedding");
    lap(`second entry: ${oneLine(await second.evaluate(() => document.body.innerText), 120)}`);
    const tabs = await expectTabs(page, { has: "旋转位置编码 RoPE", hasNot: "什么是 Kv cache 技术", groups: 2 });
    lap(`editor tabs: ${oneLine(tabs.join(" | "))}`);
    await sleep(500);
    await page.screenshot({ path: path.join(OUT, "entry-reuse.png") });
  },

  // The failure path, run only when selected (run.sh with LLMREF_TEST_PYTHON pointing at no
  // Python and LLMREF_VSCODE_STEPS=no-python): opening model.py activates the extension, which
  // finds no usable Python and shows one error with an "Open Settings" button that opens the
  // Settings editor at llmref.python.interpreter.
  async "no-python"(page) {
    const want = "llmref needs Python 3.10 or newer";
    await openFromExplorer(page, "model.py");
    const toasts = page.locator(".notifications-toasts .notification-toast");
    await toasts.filter({ hasText: want }).first().waitFor({ state: "visible", timeout: 20000 }).catch(async () => {
      throw new Error(`no notification saying ${JSON.stringify(want)} within 20s (notifications: ${oneLine((await notifications(page)).join(" | "), 400)})`);
    });
    await sleep(1500); // time for a second error to show up, were there one
    const errors = toasts.filter({ has: page.locator(".notification-list-item-icon.codicon-error") });
    const texts = (await errors.allInnerTexts()).map((t) => t.replace(/\s+/g, " ").trim());
    if (texts.length !== 1 || !texts[0].includes(want)) {
      throw new Error(`want one error notification saying ${JSON.stringify(want)}, got ${texts.length}: ${oneLine(texts.join(" | "), 600)}`);
    }
    lap(`error notification: ${oneLine(texts[0], 300)}`);
    const buttons = errors.first().locator(".notification-list-item-buttons-container .monaco-button");
    const labels = (await buttons.allInnerTexts()).map((t) => t.trim());
    if (!labels.includes("Open Settings")) throw new Error(`no "Open Settings" button on the notification (buttons: ${oneLine(labels.join(" | "))})`);
    await page.screenshot({ path: path.join(OUT, "no-python.png") });
    await buttons.filter({ hasText: "Open Settings" }).first().click();
    // the Settings editor (a modal in this VS Code) searching for the setting, or showing it
    const shown = await until("the Settings editor at llmref.python.interpreter", 15000, async () => {
      if (!(await page.locator(".settings-editor").first().isVisible())) return null;
      const box = page.locator(".settings-editor .settings-header .suggest-input-container .view-lines").first();
      const query = (await box.isVisible()) ? (await box.innerText()).replace(/\u00a0/g, " ").trim() : "";
      const row = page.locator(".settings-editor .settings-body .setting-item-contents")
        .filter({ hasText: "Python: Interpreter" }).first();
      const setting = (await row.isVisible()) ? await row.innerText() : "";
      return query.includes("llmref.python.interpreter") || setting ? { query, setting } : null;
    });
    lap(`settings editor: search ${oneLine(shown.query)}, setting ${oneLine(shown.setting, 160)}`);
    await sleep(300);
    await page.screenshot({ path: path.join(OUT, "no-python-settings.png") });
  },
};

const OPT_IN = ["no-python"]; // steps that run only when named in LLMREF_VSCODE_STEPS

// ---- diagnostics on failure ------------------------------------------------------------------

async function notifications(page) {
  const toasts = await page.locator(".notifications-toasts .notification-toast").allInnerTexts().catch(() => []);
  const listed = await page.locator(".notifications-center .notification-list-item").allInnerTexts().catch(() => []);
  return [...toasts, ...listed].map((t) => t.replace(/\s+/g, " ").trim()).filter(Boolean);
}

function walk(dir, out = []) {
  let entries = [];
  try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch (_) { return out; }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out); else out.push(p);
  }
  return out;
}

function dumpLogs() {
  const files = walk(path.join(USER_DATA, "logs"));
  const tail = (f, n, filter) => {
    let lines = fs.readFileSync(f, "utf8").split("\n");
    if (filter) lines = lines.filter(filter);
    return lines.slice(-n).join("\n");
  };
  for (const f of files.filter((f) => /llmref/i.test(path.relative(USER_DATA, f)))) {
    console.log(`---- ${path.relative(USER_DATA, f)} (last 60 lines) ----\n${tail(f, 60)}`);
  }
  for (const f of files.filter((f) => path.basename(f) === "exthost.log")) {
    console.log(`---- ${path.relative(USER_DATA, f)} (llmref/error lines) ----\n${tail(f, 25, (l) => /llmref|error/i.test(l))}`);
  }
}

/** Delete the screenshots a step saves (<step>.png, <step>-*.png, fail-<step>.png) before it
 * runs again; those of steps not run this time stay. */
function removeShots(name) {
  for (const f of fs.readdirSync(OUT)) {
    if (f === `${name}.png` || f === `fail-${name}.png` || (f.startsWith(`${name}-`) && f.endsWith(".png"))) {
      fs.rmSync(path.join(OUT, f), { force: true });
    }
  }
}

// ---- main ----------------------------------------------------------------------------------

(async () => {
  const ctx = await chromium.launchPersistentContext(path.join(CHROME_HOME, "profile"), {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 900 },
    env: { ...process.env, HOME: CHROME_HOME, XDG_CONFIG_HOME: CHROME_HOME, XDG_CACHE_HOME: CHROME_HOME },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.on("pageerror", (e) => console.log("pageerror:", e.message));
  const results = [];
  removeShots("workbench");
  try {
    await page.goto(`http://127.0.0.1:${PORT}/?folder=${encodeURIComponent(WORKSPACE)}`);
    await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
    await page.locator(".explorer-folders-view .monaco-list-row").first().waitFor({ timeout: 60000 });
    lap("workbench loaded");
    for (const [name, fn] of Object.entries(steps)) {
      if (ONLY.length ? !ONLY.includes(name) : OPT_IN.includes(name)) continue;
      removeShots(name);
      if (name === "entry" && results.some((r) => r.name === "search" && !r.ok)) {
        results.push({ name, ok: false, why: "skipped: search failed" });
        lap(`FAIL ${name}: skipped because search failed`);
        continue;
      }
      const s = Date.now();
      try {
        await fn(page);
        results.push({ name, ok: true });
        lap(`PASS ${name} (${((Date.now() - s) / 1000).toFixed(1)}s)`);
      } catch (e) {
        results.push({ name, ok: false, why: e.message });
        lap(`FAIL ${name}: ${e.message}`);
        const shot = path.join(OUT, `fail-${name}.png`);
        await page.screenshot({ path: shot }).catch(() => {});
        console.log(`  screenshot: ${shot}`);
        for (const n of await notifications(page)) console.log(`  notification: ${n}`);
        await resetFocus(page).catch(() => {});
      }
    }
  } catch (e) {
    results.push({ name: "workbench", ok: false, why: e.message });
    lap(`FAIL workbench: ${e.message}`);
    await page.screenshot({ path: path.join(OUT, "fail-workbench.png") }).catch(() => {});
  } finally {
    await ctx.close().catch(() => {});
  }
  const failed = results.filter((r) => !r.ok);
  if (failed.length) dumpLogs();
  console.log(`drive: ${results.length - failed.length} passed, ${failed.length} failed`);
  for (const r of failed) console.log(`  FAILED ${r.name}: ${r.why}`);
  process.exitCode = failed.length ? 1 : 0;
})();
