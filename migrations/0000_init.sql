CREATE TABLE "api_keys" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"key_hash" text NOT NULL,
	"scopes" text[] NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp (3) with time zone,
	"revoked_at" timestamp (3) with time zone,
	CONSTRAINT "api_keys_name_length" CHECK (char_length("api_keys"."name") between 1 and 100)
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY NOT NULL,
	"display_name" text NOT NULL,
	"discord_id" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_display_name_length" CHECK (char_length("users"."display_name") between 1 and 100),
	CONSTRAINT "users_discord_id_length" CHECK (char_length("users"."discord_id") <= 32)
);
--> statement-breakpoint
CREATE TABLE "conversations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"title" text NOT NULL,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "conversations_title_length" CHECK (char_length("conversations"."title") <= 200)
);
--> statement-breakpoint
CREATE TABLE "turns" (
	"id" uuid PRIMARY KEY NOT NULL,
	"conversation_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"parent_id" uuid,
	"role" text NOT NULL,
	"task" text NOT NULL,
	"prompt" text NOT NULL,
	"answer" text,
	"settings" jsonb NOT NULL,
	"status" text NOT NULL,
	"error_code" text,
	"error_message" text,
	"timings" jsonb,
	"model_name" text,
	"model_version" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"search_vector" "tsvector" GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, coalesce(prompt, '') || ' ' || coalesce(answer, ''))) STORED,
	CONSTRAINT "turns_prompt_length" CHECK (char_length("turns"."prompt") <= 8000),
	CONSTRAINT "turns_answer_length" CHECK (char_length("turns"."answer") <= 32000),
	CONSTRAINT "turns_error_code_length" CHECK (char_length("turns"."error_code") <= 64),
	CONSTRAINT "turns_error_message_length" CHECK (char_length("turns"."error_message") <= 2000),
	CONSTRAINT "turns_model_length" CHECK (char_length("turns"."model_name") <= 200 and char_length("turns"."model_version") <= 200),
	CONSTRAINT "turns_settings_version" CHECK (("turns"."settings" ->> 'v') = '1'),
	CONSTRAINT "turns_role" CHECK ("turns"."role" in ('user', 'assistant')),
	CONSTRAINT "turns_task" CHECK ("turns"."task" in ('understand', 'generate', 'edit')),
	CONSTRAINT "turns_status" CHECK ("turns"."status" in ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
	CONSTRAINT "turns_parent_not_self" CHECK ("turns"."parent_id" <> "turns"."id")
);
--> statement-breakpoint
CREATE TABLE "images" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"origin" text NOT NULL,
	"parent_image_id" uuid,
	"width" integer NOT NULL,
	"height" integer NOT NULL,
	"tokens" "bytea" NOT NULL,
	"token_count" integer NOT NULL,
	"scale" smallint NOT NULL,
	"codebook_size" integer NOT NULL,
	"render_seed" bigint,
	"model_name" text NOT NULL,
	"model_version" text NOT NULL,
	"content_hash" text NOT NULL,
	"png" "bytea",
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "images_origin" CHECK ("images"."origin" in ('upload', 'generated', 'edited')),
	CONSTRAINT "images_token_bytes" CHECK (octet_length("images"."tokens") = 2 * "images"."token_count"),
	CONSTRAINT "images_token_count" CHECK ("images"."token_count" between 1 and 4096),
	CONSTRAINT "images_scale" CHECK ("images"."scale" between 1 and 16),
	CONSTRAINT "images_codebook_size" CHECK ("images"."codebook_size" between 2 and 65536),
	CONSTRAINT "images_size" CHECK ("images"."width" between 1 and 8192 and "images"."height" between 1 and 8192),
	CONSTRAINT "images_model_length" CHECK (char_length("images"."model_name") <= 200 and char_length("images"."model_version") <= 200),
	CONSTRAINT "images_hash_format" CHECK ("images"."content_hash" ~ '^[0-9a-f]{64}$'),
	CONSTRAINT "images_png_size" CHECK (octet_length("images"."png") <= 16777216)
);
--> statement-breakpoint
CREATE TABLE "turn_images" (
	"turn_id" uuid NOT NULL,
	"image_id" uuid NOT NULL,
	"role" text NOT NULL,
	"position" smallint NOT NULL,
	CONSTRAINT "turn_images_turn_id_role_position_pk" PRIMARY KEY("turn_id","role","position"),
	CONSTRAINT "turn_images_role" CHECK ("turn_images"."role" in ('input', 'output')),
	CONSTRAINT "turn_images_position" CHECK ("turn_images"."position" between 0 and 15)
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"user_id" uuid NOT NULL,
	"turn_id" uuid NOT NULL,
	"status" text DEFAULT 'queued' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 2 NOT NULL,
	"worker_id" text,
	"lease_expires_at" timestamp (3) with time zone,
	"error_code" text,
	"error_message" text,
	"created_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp (3) with time zone,
	"finished_at" timestamp (3) with time zone,
	CONSTRAINT "jobs_status" CHECK ("jobs"."status" in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
	CONSTRAINT "jobs_attempts" CHECK ("jobs"."attempts" >= 0 and "jobs"."max_attempts" between 1 and 10),
	CONSTRAINT "jobs_error_code_length" CHECK (char_length("jobs"."error_code") <= 64),
	CONSTRAINT "jobs_error_message_length" CHECK (char_length("jobs"."error_message") <= 2000)
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "conversations" ADD CONSTRAINT "conversations_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "turns" ADD CONSTRAINT "turns_conversation_id_conversations_id_fk" FOREIGN KEY ("conversation_id") REFERENCES "public"."conversations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "turns" ADD CONSTRAINT "turns_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "turns" ADD CONSTRAINT "turns_parent_id_turns_id_fk" FOREIGN KEY ("parent_id") REFERENCES "public"."turns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "images" ADD CONSTRAINT "images_parent_image_id_images_id_fk" FOREIGN KEY ("parent_image_id") REFERENCES "public"."images"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "turn_images" ADD CONSTRAINT "turn_images_turn_id_turns_id_fk" FOREIGN KEY ("turn_id") REFERENCES "public"."turns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "turn_images" ADD CONSTRAINT "turn_images_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jobs" ADD CONSTRAINT "jobs_turn_id_turns_id_fk" FOREIGN KEY ("turn_id") REFERENCES "public"."turns"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_keys_key_hash_key" ON "api_keys" USING btree ("key_hash");--> statement-breakpoint
CREATE INDEX "api_keys_user_created_idx" ON "api_keys" USING btree ("user_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "users_discord_id_key" ON "users" USING btree ("discord_id");--> statement-breakpoint
CREATE INDEX "conversations_user_created_idx" ON "conversations" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "turns_conversation_created_idx" ON "turns" USING btree ("conversation_id","created_at","id");--> statement-breakpoint
CREATE INDEX "turns_parent_idx" ON "turns" USING btree ("parent_id");--> statement-breakpoint
CREATE INDEX "turns_search_idx" ON "turns" USING gin ("search_vector");--> statement-breakpoint
CREATE INDEX "turns_user_created_idx" ON "turns" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "images_user_created_idx" ON "images" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "images_user_hash_idx" ON "images" USING btree ("user_id","content_hash");--> statement-breakpoint
CREATE INDEX "images_parent_idx" ON "images" USING btree ("parent_image_id");--> statement-breakpoint
CREATE INDEX "turn_images_image_idx" ON "turn_images" USING btree ("image_id");--> statement-breakpoint
CREATE INDEX "jobs_queued_idx" ON "jobs" USING btree ("created_at","id") WHERE "jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "jobs_running_idx" ON "jobs" USING btree ("lease_expires_at") WHERE "jobs"."status" = 'running';--> statement-breakpoint
CREATE INDEX "jobs_turn_idx" ON "jobs" USING btree ("turn_id");--> statement-breakpoint
CREATE INDEX "jobs_user_created_idx" ON "jobs" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);