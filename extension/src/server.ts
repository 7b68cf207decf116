// How the language server is started: llmref.server.command, else the bundled llmref run by
// Python (llmref.python.interpreter, else the Python extension's interpreter, else python3).
import { execFile } from "child_process";
import * as path from "path";
import * as vscode from "vscode";

export interface ServerCommand {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  description: string;
}

export class NoPythonError extends Error {}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: 15000 }, (err, stdout) => (err ? reject(err) : resolve(stdout.trim())));
  });
}

interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(): { path: string };
    resolveEnvironment(p: { path: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  };
}

async function pythonFromExtension(): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!ext) {
    return undefined;
  }
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const envs = api?.environments;
    if (!envs) {
      return undefined;
    }
    const active = envs.getActiveEnvironmentPath();
    const resolved = await envs.resolveEnvironment(active);
    return resolved?.executable?.uri?.fsPath ?? active.path;
  } catch {
    return undefined;
  }
}

/** A Python that is 3.10 or newer, or throws NoPythonError saying what was tried. */
async function findPython(log: vscode.LogOutputChannel): Promise<string> {
  const setting = vscode.workspace.getConfiguration("llmref").get<string>("python.interpreter", "").trim();
  const candidates: [string, string][] = [];
  if (setting) {
    candidates.push([setting, "the llmref.python.interpreter setting"]);
  } else {
    const fromExt = await pythonFromExtension();
    if (fromExt) {
      candidates.push([fromExt, "the Python extension's interpreter"]);
    }
    candidates.push(["python3", "python3 on PATH"], ["python", "python on PATH"]);
  }
  const tried: string[] = [];
  for (const [python, source] of candidates) {
    try {
      const version = await run(python, ["-c", "import sys; print('%d.%d' % sys.version_info[:2])"]);
      const [major, minor] = version.split(".").map(Number);
      if (major > 3 || (major === 3 && minor >= 10)) {
        log.info(`using Python ${version} at ${python} (${source})`);
        return python;
      }
      tried.push(`${python} (${source}) is Python ${version}`);
    } catch {
      tried.push(`${python} (${source}) could not be run`);
    }
  }
  throw new NoPythonError(`llmref needs Python 3.10 or newer: ${tried.join("; ")}.`);
}

export async function serverCommand(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): Promise<ServerCommand> {
  const custom = vscode.workspace.getConfiguration("llmref").get<string[]>("server.command", []);
  if (custom.length > 0) {
    return { command: custom[0], args: custom.slice(1), env: process.env, description: custom.join(" ") };
  }
  const python = await findPython(log);
  const libs = path.join(context.extensionPath, "bundled", "libs");
  const env = { ...process.env, PYTHONPATH: [libs, process.env.PYTHONPATH].filter(Boolean).join(path.delimiter) };
  return { command: python, args: ["-m", "llmref", "serve"], env, description: `${python} -m llmref serve (bundled)` };
}
