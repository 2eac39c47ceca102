import { builder } from '../graphql/builder.js';
import { decodeId, encodeId } from '../graphql/global-id.js';
import { NotFoundError } from '../platform/errors.js';
import { registerNodeLoader } from '../graphql/node.js';
import { resolvePage } from '../graphql/pages.js';
import type { SignUpResult } from './account.service.js';
import type { AccountRow, ApiKeyRow, TierRow } from './account.table.js';

export const TierEnum = builder.enumType('Tier', { values: ['FREE', 'PAID'] as const });
export const RoleEnum = builder.enumType('Role', {
  description: 'VIEWER reads; MEMBER also changes streams, connections and pipelines; ADMIN also manages API keys.',
  values: ['ADMIN', 'MEMBER', 'VIEWER'] as const,
});

export const TierLimitsRef = builder.objectRef<TierRow>('TierLimits').implement({
  description: "Limits of an account's tier.",
  fields: (t) => ({
    tier: t.field({ type: TierEnum, resolve: (row) => row.name }),
    maxActiveJobs: t.exposeInt('max_active_jobs', { description: 'Active pipelines plus active connections.' }),
    maxTaskCount: t.exposeInt('max_task_count', { description: 'Sum of task counts over active jobs.' }),
    maxConcurrentPreviews: t.exposeInt('max_concurrent_previews'),
    maxStreams: t.exposeInt('max_streams', { description: 'Streams the account may hold.' }),
    maxPipelines: t.exposeInt('max_pipelines', { description: 'Pipelines the account may hold, active or not.' }),
    maxConnections: t.exposeInt('max_connections', { description: 'Connections the account may hold, active or not.' }),
  }),
});

export const AccountRef = builder.node(builder.objectRef<AccountRow>('Account'), {
  id: { resolve: (row) => row.id },
  fields: (t) => ({
    name: t.exposeString('name'),
    tier: t.field({ type: TierEnum, resolve: (row) => row.tier }),
    limits: t.field({ type: TierLimitsRef, resolve: (row, _args, ctx) => ctx.services.accounts.tierLimits(row.tier) }),
    createdAt: t.field({ type: 'DateTime', resolve: (row) => row.created_at }),
  }),
});
registerNodeLoader('Account', async (ctx, id) => {
  const account = await ctx.services.accounts.viewer(ctx.actor);
  if (account.id !== id) throw new NotFoundError('Account', encodeId('Account', id));
  return account;
});

export const ApiKeyRef = builder.node(builder.objectRef<ApiKeyRow>('ApiKey'), {
  id: { resolve: (row) => row.id },
  description: 'An API key. The key itself is shown only when it is created.',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: RoleEnum, resolve: (row) => row.role }),
    prefix: t.exposeString('prefix', { description: 'The first characters of the key, to tell keys apart.' }),
    createdAt: t.field({ type: 'DateTime', resolve: (row) => row.created_at }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, resolve: (row) => row.last_used_at }),
    revokedAt: t.field({ type: 'DateTime', nullable: true, resolve: (row) => row.revoked_at }),
  }),
});
registerNodeLoader('ApiKey', (ctx, id) => ctx.services.accounts.getApiKey(ctx.actor, id));

builder.queryFields((t) => ({
  viewer: t.field({
    type: AccountRef,
    description: 'The account of the API key making the request.',
    resolve: (_root, _args, ctx) => ctx.services.accounts.viewer(ctx.actor),
  }),
  apiKeys: t.connection({
    type: ApiKeyRef,
    description: "The account's API keys, revoked ones included (ADMIN).",
    resolve: (_root, args, ctx) => resolvePage(args, (page) => ctx.services.accounts.listApiKeys(ctx.actor, page)),
  }),
}));

const SignUpInput = builder.inputType('SignUpInput', {
  fields: (t) => ({ name: t.string({ required: true, description: 'Display name of the account.' }) }),
});

const CreatedApiKey = builder.objectRef<{ apiKey: ApiKeyRow; secret: string }>('CreatedApiKey').implement({
  fields: (t) => ({
    apiKey: t.field({ type: ApiKeyRef, resolve: (r) => r.apiKey }),
    secret: t.exposeString('secret', { description: 'The key. Shown only now: store it, Weir keeps only a keyed hash.' }),
  }),
});

const SignUpPayload = builder.objectRef<SignUpResult>('SignUpPayload').implement({
  fields: (t) => ({
    account: t.field({ type: AccountRef, resolve: (r) => r.account }),
    apiKey: t.field({
      type: ApiKeyRef,
      description: 'The first key of the account, with the ADMIN role.',
      resolve: (r) => r.apiKey,
    }),
    secret: t.exposeString('secret', { description: 'The key. Shown only now: store it, Weir keeps only a keyed hash.' }),
  }),
});

const CreateApiKeyInput = builder.inputType('CreateApiKeyInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
  }),
});

builder.mutationFields((t) => ({
  signUp: t.field({
    type: SignUpPayload,
    description: 'Creates an account (tier FREE) and its first API key. Creates no Flink or Kubernetes resource.',
    args: { input: t.arg({ type: SignUpInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.accounts.signUp(input, ctx.clientAddress),
  }),
  createApiKey: t.field({
    type: CreatedApiKey,
    description: 'Creates an API key for the caller’s account (ADMIN).',
    args: { input: t.arg({ type: CreateApiKeyInput, required: true }) },
    resolve: (_root, { input }, ctx) => ctx.services.accounts.createApiKey(ctx.actor, input),
  }),
  revokeApiKey: t.field({
    type: ApiKeyRef,
    description: 'Revokes a key (ADMIN): refused from its next request on; its open subscriptions close now.',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.accounts.revokeApiKey(ctx.actor, decodeId(String(args.id), 'ApiKey')),
  }),
}));
