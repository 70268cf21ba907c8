// The envs REST API of osl_hooks.lab (docs/lab.md), through ServerConnection (it adds auth and the XSRF token).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface IBackgroundCopy {
  state: string; // queued, waiting, running, done, failed, stopped
  percent?: number;
  eta_seconds?: number | null;
  message?: string;
  time?: string;
}

export interface IStartEnv {
  mode: string;
  effective_mode: string | null;
  state: string; // pending, working, ready, fallback, absent, failed
  prefix: string | null;
  fallback: string | null;
  image_id: string | null;
  copy_id: string | null;
  volume_bytes: number | null;
  linked_bytes: number | null;
  conflicts: number | null;
  new_conflicts: number | null;
  warnings: string[];
  errors: string[];
}

export interface ISync {
  mode: string;
  target: string;
  source_id?: string;
  synced_at?: string;
  conflicts: string[];
  conflicts_dir: string;
  packages_changed: { [what: string]: number } | null;
  bytes_on_volume: number | null;
  bytes_via_links?: number | null;
  volume_bytes?: number | null; // linked: what the record says the copy takes, kept true by a materialize
  linked_bytes?: number | null; // linked: the bytes still served by links into the image
  linked_files?: number | null; // linked: how many files are still links into the image
}

export interface IEnv {
  name: string;
  mode: string;
  in_plan: boolean;
  kernel: string | null;
  kernel_running: boolean;
  actions: string[];
  task: string | null;
  start: IStartEnv | null;
  sync: ISync | null;
  background_copy: IBackgroundCopy | null;
}

export interface IEnvs {
  home: string;
  plan_found: boolean;
  last_start: { state: string; message?: string; started_at?: string; finished_at?: string } | null;
  envs: IEnv[];
}

export interface ITask {
  id: string;
  env: string;
  action: string;
  state: string; // running, ok, degraded, failed
  message: string;
  started_at?: string;
  finished_at?: string | null;
}

export interface IDiff {
  name: string;
  summary: { [what: string]: number };
  lines: string[];
}

/** A refusal of the API: its status and its sentence. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string | null = null // the cause as data, where the panel acts on it (kernel_running)
  ) {
    super(message);
  }
}

export async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'osl-hooks/api', path);
  const response = await ServerConnection.makeRequest(url, init, settings);
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const sentence = (data && data.message) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, sentence, (data && data.reason) || null);
  }
  return data as T;
}

export const getEnvs = (): Promise<IEnvs> => request<IEnvs>('envs');
export const getDiff = (name: string): Promise<IDiff> => request<IDiff>(`envs/${encodeURIComponent(name)}/diff`);
export const getTask = (id: string): Promise<ITask> => request<ITask>(`tasks/${encodeURIComponent(id)}`);
export const startAction = (name: string, action: string, body: object): Promise<ITask> =>
  request<ITask>(`envs/${encodeURIComponent(name)}/${action}`, { method: 'POST', body: JSON.stringify(body) });
