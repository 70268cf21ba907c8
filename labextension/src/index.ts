// osl-hooks in JupyterLab: the Environments side panel, a status-bar item while an own copy is being made, and
// notifications (a background copy completed, an image update with conflicts, an env that fell back).
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IStatusBar } from '@jupyterlab/statusbar';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { EnvsModel } from './model';
import { EnvironmentsPanel, PANEL_ID } from './panel';

const ICON = new LabIcon({
  name: 'osl-hooks:envs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M12 2C7 2 3 3.8 3 6v12c0 2.2 4 4 9 4s9-1.8 9-4V6c0-2.2-4-4-9-4zm0 2c4.4 0 7 1.5 7 2s-2.6 2-7 2-7-1.5-7-2 ' +
    '2.6-2 7-2zM5 9.2C6.7 10 9.2 10.5 12 10.5s5.3-.5 7-1.3V12c0 .5-2.6 2-7 2s-7-1.5-7-2V9.2zm0 6c1.7.8 4.2 1.3 7 ' +
    '1.3s5.3-.5 7-1.3V18c0 .5-2.6 2-7 2s-7-1.5-7-2v-2.8z"/></g></svg>'
});

class CopyStatus extends Widget {
  constructor(private model: EnvsModel, onClick: () => void) {
    super();
    this.addClass('osl-hooks-status-item');
    this.node.title = 'osl-hooks: an own copy of an environment is being made (click for the Environments panel)';
    this.node.onclick = onClick;
    model.changed.connect(() => this.update_());
    this.update_();
  }

  update_(): void {
    const envs = this.model.copying;
    this.node.textContent = envs
      .map(e => `Copying ${e.name}: ${e.background_copy?.percent ?? 0}% (read-only until done)`)
      .join(' · ');
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'osl-hooks:plugin',
  description: 'osl-hooks: your environments (state, drift, conflicts, reset) in JupyterLab',
  autoStart: true,
  optional: [ILabShell, IStatusBar],
  activate: (app: JupyterFrontEnd, labShell: ILabShell | null, statusBar: IStatusBar | null) => {
    const show = () => app.shell.activateById(PANEL_ID);
    const model = new EnvsModel(show);
    const panel = new EnvironmentsPanel(model);
    panel.title.icon = ICON;
    app.shell.add(panel, 'left', { rank: 900 });
    app.commands.addCommand('osl-hooks:show-environments', { label: 'Show Environments', execute: show });
    if (statusBar) {
      const item = new CopyStatus(model, show);
      statusBar.registerStatusItem('osl-hooks:copy-status', {
        item,
        align: 'left',
        rank: 900,
        isActive: () => model.copying.length > 0,
        activeStateChanged: model.changed
      });
    }
    model.start();
  }
};

export default plugin;
