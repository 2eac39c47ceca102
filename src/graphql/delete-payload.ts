import { builder } from './builder.js';
import { encodeId } from './global-id.js';

/** What a delete mutation answers: the id that no longer resolves. */
export const DeletePayloadRef = builder.objectRef<{ type: string; id: string }>('DeletePayload').implement({
  fields: (t) => ({
    deletedId: t.id({ description: 'Global id of the deleted object.', resolve: (d) => encodeId(d.type, d.id) }),
  }),
});

export const deleted = (type: string) => (row: { id: string }) => ({ type, id: row.id });
