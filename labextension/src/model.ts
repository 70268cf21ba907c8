// What the panel, the status-bar item and the notifications show: GET envs, polled (5 s while a copy or a task
// runs, 30 s otherwise), and the notifications a change deserves.
import { Notification } from '@jupyterlab/apputils';
import { ISignal, Signal } from '@lumino/signaling';

import { getEnvs, IEnv, IEnvs } from './api';

const FAST = 5000;
const SLOW = 30000;
const SEEN_KEY = 'osl-hooks:notified';

/** A copy made in the background that is not finished yet. */
export function copying(env: IEnv): boolean {
  const state = env.background_copy?.state;
  return state === 'queued' || state === 'waiting' || state === 'running';
}

/** Why an env runs from the image instead of the user's copy (the start's `fallback` code), and what to do. */
export const FALLBACK_REASONS: { [code: string]: string } = {
  disk_full:
    'your home has no room for your own copy: free space in it (old backups in ~/.local/state/osl-hooks/backups ' +
    'can go) and restart your server',
  relocation: "its packages cannot be moved to your home's longer path; ask your admins",
  unsafe_home: 'a link in your home leads out of it where your copy would be; remove it and restart your server',
  copy_failed: 'your copy could not be made (~/.local/state/osl-hooks/start.log says why); restart your server to try again'
};

/** The same, short enough for a notification (JupyterLab cuts a toast's message at 140 characters): the
 * notification's Details button opens the panel, which has the start's whole sentence. */
export const FALLBACK_SHORT: { [code: string]: string } = {
  disk_full: 'your home is full. Free space in it and restart your server.',
  relocation: "its packages cannot be moved to your home's path.",
  unsafe_home: 'a link in your home leads out of it.',
  copy_failed: 'your copy could not be made.'
};

export function fallbackReason(code: string | null | undefined): string {
  return (code && FALLBACK_REASONS[code]) || `the start fell back (${code ?? 'unknown'})`;
}

export function humanBytes(n: number | null | undefined): string {
  if (n === null || n === undefined) {
    return 'unknown';
  }
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function tilde(home: string, path: string | undefined): string {
  return path && home && path.startsWith(home + '/') ? '~' + path.slice(home.length) : path ?? '';
}

export class EnvsModel {
  /** `showPanel`: what a notification's Details button does (opens the Environments panel). */
  constructor(private showPanel: () => void = () => undefined) {}

  private _data: IEnvs | null = null;
  private _error: string | null = null;
  private _changed = new Signal<this, void>(this);
  private _timer: number | null = null;
  private _previous = new Map<string, string | undefined>(); // env -> its background copy's state last time
  private _first = true;

  get data(): IEnvs | null {
    return this._data;
  }

  get error(): string | null {
    return this._error;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The envs whose own copy is being made in the background (read-only until it is complete). */
  get copying(): IEnv[] {
    return (this._data?.envs ?? []).filter(copying);
  }

  start(): void {
    void this.refresh();
  }

  async refresh(): Promise<void> {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
    try {
      this._data = await getEnvs();
      this._error = null;
      this.notify(this._data);
    } catch (reason) {
      this._error = `osl-hooks could not say how your environments are: ${(reason as Error).message}`;
    }
    this._changed.emit();
    const busy = this.copying.length > 0 || (this._data?.envs ?? []).some(e => e.task);
    this._timer = window.setTimeout(() => void this.refresh(), busy ? FAST : SLOW);
  }

  private notify(data: IEnvs): void {
    for (const env of data.envs) {
      const before = this._previous.get(env.name);
      const now = env.background_copy?.state;
      this._previous.set(env.name, now);
      const wasCopying = before === 'queued' || before === 'waiting' || before === 'running';
      if (!this._first && wasCopying && now === 'done') {
        Notification.success(
          `Your own copy of ${env.name} is complete: kernels started from now on use your copy ` +
            '(restart a running one to use it).',
          { autoClose: false }
        );
      } else if (!this._first && wasCopying && now === 'failed') {
        Notification.error(
          `Your own copy of ${env.name} could not be made: ${env.background_copy?.message ?? ''}`,
          { autoClose: false }
        );
      }
    }
    this._first = false;
    // What the last start did: said once per start (remembered in this browser).
    const start = data.last_start?.started_at ?? '';
    for (const env of data.envs) {
      const conflicts = env.sync?.conflicts ?? [];
      if (env.start && (env.start.new_conflicts ?? env.start.conflicts ?? 0) > 0 && conflicts.length) {
        this.once(`conflicts:${env.name}:${start}`, () => {
          const shown = conflicts.slice(0, 3).join(', ') + (conflicts.length > 3 ? ` and ${conflicts.length - 3} more` : '');
          // What was kept first: JupyterLab cuts the message at 140 characters, a long list of files included.
          Notification.warning(
            `An image update of ${env.name} changed files you had changed too; yours were kept: ${shown}`,
            { autoClose: false, actions: [this.details(`The image's versions are in ${tilde(data.home, env.sync?.conflicts_dir)}`)] }
          );
        });
      }
      if (env.start?.state === 'fallback') {
        this.once(`fallback:${env.name}:${start}`, () => {
          // Why, in words that fit a notification; the start's whole sentence (how much to free) is in the panel.
          const code = env.start?.fallback ?? '';
          const why = FALLBACK_SHORT[code] ?? `${fallbackReason(code)}.`;
          Notification.warning(`${env.name} runs from the image, not from your own copy: ${why}`, {
            autoClose: false,
            actions: [this.details('What the start said, in the Environments panel')]
          });
        });
      }
    }
  }

  /** A notification's button that opens the Environments panel. */
  private details(caption: string): Notification.IAction {
    return { label: 'Details', caption, callback: () => this.showPanel() };
  }

  private once(key: string, say: () => void): void {
    let seen: string[] = [];
    try {
      seen = JSON.parse(window.localStorage.getItem(SEEN_KEY) || '[]');
    } catch {
      seen = [];
    }
    if (seen.includes(key)) {
      return;
    }
    say();
    seen.push(key);
    window.localStorage.setItem(SEEN_KEY, JSON.stringify(seen.slice(-100)));
  }

  dispose(): void {
    if (this._timer !== null) {
      window.clearTimeout(this._timer);
    }
  }
}
