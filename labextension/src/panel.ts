// The Environments side panel: each env's state, where its kernels run from, its bytes, drift and conflicts,
// and Diff / Reset / Make real behind a confirmation that says what happens to the user's files.
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ApiError, getDiff, getTask, IEnv, ITask, startAction } from './api';
import { copying, EnvsModel, fallbackReason, humanBytes } from './model';

function el(tag: string, className: string, text?: string): HTMLElement {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function bodyOf(...paragraphs: (string | HTMLElement)[]): Widget {
  const body = new Widget();
  for (const p of paragraphs) {
    body.node.appendChild(typeof p === 'string' ? el('p', '', p) : p);
  }
  return body;
}

/** The state's label and its class: ready, copying N%, fell back, failed. */
export function stateOf(env: IEnv, lastRunEnded = true): [string, string] {
  const copy = env.background_copy;
  if (copy && copying(env)) {
    return [`copying ${copy.percent ?? 0}%`, 'copying'];
  }
  if (env.start?.state === 'background' && copy?.state !== 'done') {
    return ['copy pending', 'copying']; // the start left the copy to the background; it has not begun yet
  }
  const state = env.start?.state;
  if (state === 'fallback') {
    return ['fell back to the image', 'fallback'];
  }
  if (state === 'failed' || copy?.state === 'failed') {
    return ['failed', 'failed'];
  }
  if (state === 'ready' || copy?.state === 'done') {
    return ['ready', 'ready'];
  }
  if (state === 'pending' && lastRunEnded && env.sync) {
    // The last start ended before it reached this env (a materialize since then changed only its record, a
    // reset would have replaced this entry): its copy is as its record says.
    return ['ready', 'ready'];
  }
  return [state ?? 'unknown', 'ready'];
}

export const PANEL_ID = 'osl-hooks-environments';

/** Make real's confirmation: what happens, and the paths to make real (none: the whole env). */
class PathsBody extends Widget {
  private _input: HTMLTextAreaElement;

  constructor(sentence: string) {
    super();
    this.node.appendChild(el('p', '', sentence));
    const label = el('label', 'osl-hooks-paths', 'Only these paths (relative to the env, one per line; empty: the whole env):');
    this._input = document.createElement('textarea');
    this._input.rows = 3;
    this._input.placeholder = 'lib/python3.11/site-packages/numpy';
    label.appendChild(this._input);
    this.node.appendChild(label);
  }

  getValue(): string[] {
    return this._input.value
      .split('\n')
      .map(p => p.trim())
      .filter(p => p);
  }
}

export class EnvironmentsPanel extends Widget {
  private _tasks = new Map<string, ITask>(); // env -> its latest task (running or just ended)

  constructor(private model: EnvsModel) {
    super();
    this.id = PANEL_ID;
    this.addClass('osl-hooks-panel');
    this.title.caption = 'Environments';
    model.changed.connect(() => this.render());
    this.render();
  }

  render(): void {
    const node = this.node;
    node.textContent = '';
    node.appendChild(el('h2', '', 'Environments'));
    const data = this.model.data;
    if (this.model.error) {
      node.appendChild(el('div', 'osl-hooks-line osl-hooks-problem', this.model.error));
    }
    if (!data) {
      node.appendChild(el('div', 'osl-hooks-summary', 'Reading your environments…'));
      return;
    }
    const last = data.last_start;
    node.appendChild(
      el(
        'div',
        'osl-hooks-summary',
        last ? `Last start: ${last.message ?? last.state}` : 'No start of your server has been recorded yet.'
      )
    );
    for (const env of data.envs) {
      node.appendChild(this.renderEnv(env));
    }
  }

  /** A path as the user knows it: under their home, with ~. */
  private tilde(path: string | null | undefined): string {
    const home = this.model.data?.home;
    if (!path) {
      return '';
    }
    return home && (path === home || path.startsWith(home + '/')) ? '~' + path.slice(home.length) : path;
  }

  /** A path for a shell command the user copies into a terminal (quoted; $HOME for their home). */
  private shell(path: string): string {
    const home = this.model.data?.home;
    const quoted = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
    return home && path.startsWith(home + '/') ? `"$HOME"/${quoted(path.slice(home.length + 1))}` : quoted(path);
  }

  private renderEnv(env: IEnv): HTMLElement {
    const card = el('div', 'osl-hooks-env');
    card.dataset.env = env.name;
    const head = el('div', 'osl-hooks-env-head');
    head.appendChild(el('span', 'osl-hooks-env-name', env.name));
    const start = env.start;
    const mode = start?.effective_mode === 'baked' && env.mode !== 'baked' ? `${env.mode} → the image's` : env.mode;
    head.appendChild(el('span', 'osl-hooks-env-mode', mode));
    const [label, kind] = stateOf(env, !!this.model.data?.last_start?.finished_at);
    head.appendChild(el('span', `osl-hooks-state osl-hooks-state-${kind}`, label));
    card.appendChild(head);

    const line = (text: string, extra = '') => card.appendChild(el('div', `osl-hooks-line ${extra}`, text));
    const copy = env.background_copy;
    if (copy && copying(env)) {
      const bar = el('div', 'osl-hooks-progress');
      const fill = el('div', '');
      fill.style.width = `${copy.percent ?? 0}%`;
      bar.appendChild(fill);
      card.appendChild(bar);
      const left = copy.eta_seconds ? `about ${Math.round(copy.eta_seconds)} s left` : 'time left not known yet';
      const waiting = copy.state === 'running' ? '' : ' (waiting to begin)';
      line(
        `Your own copy is being made${waiting}: ${copy.percent ?? 0}%, ${left}. Until it is complete, ${env.name} ` +
          'runs read-only from the image: installing packages into it is refused.'
      );
    } else if (copy?.state === 'failed' || copy?.state === 'stopped') {
      line(`Your own copy: ${copy.state}: ${copy.message ?? ''}`, 'osl-hooks-problem');
    }
    if (start?.state === 'fallback') {
      line(
        `It runs from the image, not from your own copy: ${fallbackReason(start.fallback)}. Packages you ` +
          'install into it are lost at the next restart.',
        'osl-hooks-problem'
      );
    }
    const home = this.model.data?.home;
    for (const problem of [...(start?.warnings ?? []), ...(start?.errors ?? [])]) {
      line(home ? problem.split(home + '/').join('~/') : problem, 'osl-hooks-problem');
    }
    const fromImage = copying(env) || start?.effective_mode === 'baked' || env.mode === 'baked';
    const runsFrom = fromImage
      ? `the image (${start?.prefix ?? 'read-only'})`
      : `your copy (${this.tilde(env.sync?.target ?? start?.prefix) || '?'})`;
    line(`Kernels run from ${runsFrom}${env.kernel ? `; kernel ${env.kernel}${env.kernel_running ? ', running' : ''}` : ''}.`);
    const sync = env.sync;
    // The record first: a materialize keeps it true, while the start's figures are those of the last start.
    const onVolume = sync?.bytes_on_volume ?? sync?.volume_bytes ?? start?.volume_bytes;
    if (onVolume !== null && onVolume !== undefined) {
      const links = sync?.bytes_via_links ?? sync?.linked_bytes ?? start?.linked_bytes;
      line(`${humanBytes(onVolume)} on your volume${env.mode === 'linked' && links ? ` (+ ${humanBytes(links)} through links)` : ''}.`);
    }
    if (env.mode === 'linked' && typeof sync?.linked_files === 'number') {
      line(
        sync.linked_files
          ? `${sync.linked_files} file(s) are still links into the image: Make real turns them into your own files.`
          : 'No file is a link into the image any more: the whole env is your own.'
      );
    }
    if (start?.image_id && start?.copy_id && start.image_id !== start.copy_id && start.state !== 'fallback') {
      line('An image update of this env is waiting: it is applied at your next server start.');
    }
    const changed = sync?.packages_changed;
    if (changed) {
      const counts = Object.entries(changed).filter(([, n]) => n > 0);
      line(
        counts.length
          ? `Your packages against the image: ${counts.map(([what, n]) => `${n} ${what}`).join(', ')}.`
          : 'Your packages are the image\'s (no drift).'
      );
    }
    if (sync && sync.conflicts.length) {
      line(`${sync.conflicts.length} conflict(s) with the image's last update: yours were kept.`, 'osl-hooks-problem');
      const list = el('ul', 'osl-hooks-conflicts');
      for (const path of sync.conflicts) {
        const item = el('li', '');
        item.appendChild(el('code', '', path));
        item.appendChild(document.createTextNode(' (yours kept) — to take the image\'s version: '));
        item.appendChild(el('code', '', `cp -a ${this.shell(`${sync.conflicts_dir}/${path}`)} ${this.shell(`${sync.target}/${path}`)}`));
        list.appendChild(item);
      }
      card.appendChild(list);
    }
    const task = this._tasks.get(env.name);
    if (task) {
      const what = task.state === 'running' ? `${task.action}: ${task.message || 'running…'}` : `${task.action} ${task.state}: ${task.message}`;
      line(what, 'osl-hooks-task');
    }
    const actions = el('div', 'osl-hooks-actions');
    const busy = !!env.task || task?.state === 'running';
    const button = (text: string, action: () => void) => {
      const b = el('button', 'jp-Button jp-mod-styled jp-mod-reject', text) as HTMLButtonElement;
      b.dataset.action = text;
      b.disabled = busy || copying(env);
      b.onclick = action;
      actions.appendChild(b);
    };
    if (env.actions.includes('diff')) {
      button('Diff', () => void this.diff(env));
    }
    if (env.actions.includes('reset')) {
      button('Reset', () => void this.reset(env));
    }
    if (env.actions.includes('materialize')) {
      button('Make real', () => void this.materialize(env));
    }
    if (actions.childElementCount) {
      card.appendChild(actions);
    }
    return card;
  }

  private async diff(env: IEnv): Promise<void> {
    try {
      const diff = await getDiff(env.name);
      const pre = el('div', 'osl-hooks-diff', diff.lines.join('\n') || 'Your packages are the image\'s.');
      await showDialog({ title: `${env.name}: your packages against the image`, body: bodyOf(pre), buttons: [Dialog.okButton()] });
    } catch (reason) {
      Notification.error(`Diff of ${env.name}: ${(reason as Error).message}`);
    }
  }

  private async reset(env: IEnv): Promise<void> {
    const target = this.tilde(env.sync?.target) || `of ${env.name}`;
    // A running kernel: the server refuses a reset unless the request says to go on, so this confirmation says
    // what going on means, and its button sends that (a kernel started since the panel last looked is asked
    // about again, in run()).
    const running = env.kernel_running;
    const result = await showDialog({
      title: `Reset ${env.name}?`,
      body: bodyOf(
        `Your copy ${target} is moved to ~/.local/state/osl-hooks/backups/ and replaced by a fresh copy of the ` +
          'image\'s version. Packages you installed, upgraded or removed in it, and files you changed there, are ' +
          'no longer used (they stay in the backup until you delete it). Your notebooks and other files are not touched.',
        running
          ? `A kernel of ${env.name} is running: it keeps using the old files until you restart it after the reset.`
          : `Kernels of ${env.name} started afterwards use the new copy.`
      ),
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: running ? 'Reset anyway' : 'Reset' })]
    });
    if (!result.button.accept) {
      return;
    }
    await this.run(env, 'reset', running ? { force: true } : {});
  }

  private async materialize(env: IEnv): Promise<void> {
    const linked = env.sync?.linked_bytes ?? env.start?.linked_bytes;
    const result = await showDialog({
      title: `Make ${env.name} real?`,
      body: new PathsBody(
        `Files of ${env.name} that are still links into the image become real files in your copy ` +
          `${this.tilde(env.sync?.target)}: all of them, or only those at or under the paths you give. Nothing ` +
          'you changed is lost; your volume then holds those files' +
          (linked ? ` (about ${humanBytes(linked)} more for the whole env).` : '.')
      ),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Make real' })]
    });
    if (!result.button.accept) {
      return;
    }
    const paths = result.value ?? [];
    await this.run(env, 'materialize', paths.length ? { paths } : {});
  }

  private async run(env: IEnv, action: string, body: { [key: string]: unknown }): Promise<void> {
    let task: ITask;
    try {
      task = await startAction(env.name, action, body);
    } catch (reason) {
      const error = reason as ApiError;
      if (error.reason === 'kernel_running' && !body.force) {
        const again = await showDialog({
          title: `A kernel of ${env.name} is running`,
          body: bodyOf(error.message, 'Reset anyway? The running kernel keeps the old files until you restart it.'),
          buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Reset anyway' })]
        });
        if (again.button.accept) {
          await this.run(env, action, { ...body, force: true });
        }
        return;
      }
      Notification.error(`${action} ${env.name}: ${error.message}`, { autoClose: false });
      return;
    }
    this._tasks.set(env.name, task);
    this.render();
    while (task.state === 'running') {
      await new Promise(resolve => window.setTimeout(resolve, 1000));
      try {
        task = await getTask(task.id);
      } catch (reason) {
        task = { ...task, state: 'failed', message: (reason as Error).message };
      }
      this._tasks.set(env.name, task);
      this.render();
    }
    const say = task.state === 'ok' ? Notification.success : task.state === 'degraded' ? Notification.warning : Notification.error;
    say(`${action === 'reset' ? 'Reset' : 'Make real'} ${env.name}: ${task.message}`, { autoClose: 10000 });
    await this.model.refresh();
  }
}
