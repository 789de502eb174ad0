/**
 * The shape of a request schema: JSON Schema as api/openapi.yaml writes it, plus the `x-ims-*`
 * extensions that carry the original's validation rules (shared/domain/validation.ts applies them).
 */
export interface FieldSchema {
  type?: 'object' | 'string' | 'boolean' | 'integer' | 'array';
  format?: string;
  nullable?: boolean;
  enum?: readonly string[];
  minLength?: number;
  minimum?: number;
  default?: unknown;
  properties?: Readonly<Record<string, FieldSchema>>;
  required?: readonly string[];
  additionalProperties?: boolean | FieldSchema;
  items?: FieldSchema;
  'x-ims-messages'?: Readonly<{ enum?: string; minLength?: string; minimum?: string }>;
  [extension: string]: unknown;
}
