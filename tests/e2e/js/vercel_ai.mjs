// The Vercel AI SDK against the gateway: one provider flavour, one chat model, every capability.
//
// Usage: node vercel_ai.mjs '<json>' with {baseURL, apiKey, flavour, model, embeddingModel}, where
// flavour is "openai-compatible" (@ai-sdk/openai-compatible), "openai-chat" (@ai-sdk/openai's
// chat model) or "openai-responses" (@ai-sdk/openai's default model, the Responses API).
// Prints, as its last line, one JSON object: for each capability what the SDK returned, or {error}
// with the SDK's message and the gateway's response body. The Python test
// (test_client_vercel_ai.py) judges it.
//
// Before each tool round trip it prints {"pause": "<capability>"} and waits for a line on stdin: the
// test scripts the upstream's next answer as a tool call, then lets it go on.

import { createOpenAI } from "@ai-sdk/openai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import {
  embed,
  embedMany,
  generateObject,
  generateText,
  stepCountIs,
  streamObject,
  streamText,
  tool,
} from "ai";
import { createInterface } from "node:readline";
import { z } from "zod";

const spec = JSON.parse(process.argv[2]);

function languageModel() {
  if (spec.flavour === "openai-compatible") {
    // includeUsage: this provider asks for stream usage only when told to.
    // supportsStructuredOutputs: without it the schema is not sent at all (plain json_object).
    const provider = createOpenAICompatible({
      name: "siraya",
      baseURL: spec.baseURL,
      apiKey: spec.apiKey,
      includeUsage: true,
      supportsStructuredOutputs: true,
    });
    return { chat: provider(spec.model), embedding: (id) => provider.embeddingModel(id) };
  }
  const provider = createOpenAI({ baseURL: spec.baseURL, apiKey: spec.apiKey });
  const chat = spec.flavour === "openai-chat" ? provider.chat(spec.model) : provider(spec.model);
  return { chat, embedding: (id) => provider.embedding(id) };
}

const { chat, embedding } = languageModel();
const weatherInput = z.object({ city: z.string() });
const Weather = z.object({ city: z.string(), celsius: z.number().int() });

function usageOf(usage) {
  return { inputTokens: usage.inputTokens ?? null, outputTokens: usage.outputTokens ?? null };
}

const weatherTool = tool({
  description: "The current weather in a city",
  inputSchema: weatherInput,
  execute: async ({ city }) => `SUNNY-42 in ${city}`,
});

function roundTrip(steps, text) {
  return {
    steps: steps.length,
    toolCalls: steps.flatMap((s) => s.toolCalls.map((c) => ({ name: c.toolName, input: c.input }))),
    toolResults: steps.flatMap((s) => s.toolResults.map((r) => r.output)),
    text,
  };
}

const capabilities = {
  async tools() {
    const result = await generateText({
      model: chat,
      prompt: "What is the weather in Paris?",
      tools: { get_weather: weatherTool },
      stopWhen: stepCountIs(3),
    });
    return roundTrip(result.steps, result.text);
  },
  async tools_stream() {
    const result = streamText({
      model: chat,
      prompt: "What is the weather in Paris?",
      tools: { get_weather: weatherTool },
      stopWhen: stepCountIs(3),
      onError: () => {},
    });
    for await (const _ of result.textStream);
    return roundTrip(await result.steps, await result.text);
  },
  async invoke() {
    const result = await generateText({ model: chat, prompt: "Say hello" });
    return { text: result.text, finishReason: result.finishReason, usage: usageOf(result.usage) };
  },
  async stream() {
    const result = streamText({ model: chat, prompt: "Stream hello", onError: () => {} });
    const pieces = [];
    for await (const piece of result.textStream) pieces.push(piece);
    return {
      pieces: pieces.length,
      text: pieces.join(""),
      finishReason: await result.finishReason,
      usage: usageOf(await result.usage),
    };
  },
  async structured_json_schema() {
    const result = await generateObject({ model: chat, schema: Weather, prompt: "Weather in Paris?" });
    return { object: result.object };
  },
  async structured_stream() {
    const result = streamObject({ model: chat, schema: Weather, prompt: "Weather in Paris?", onError: () => {} });
    let partials = 0;
    for await (const _ of result.partialObjectStream) partials += 1;
    return { partials, object: await result.object, usage: usageOf(await result.usage) };
  },
  async structured_tool() {
    const result = await generateText({
      model: chat,
      prompt: "Weather in Paris?",
      tools: { Weather: tool({ description: "Report the weather", inputSchema: Weather }) },
      toolChoice: { type: "tool", toolName: "Weather" },
    });
    return { toolCalls: result.toolCalls.map((c) => ({ name: c.toolName, input: c.input })) };
  },
  async embeddings() {
    if (!spec.embeddingModel) return { skipped: "no embedding model on this upstream" };
    const model = embedding(spec.embeddingModel);
    const many = await embedMany({ model, values: ["hello world", "the second document"] });
    const one = await embed({ model, value: "hello world" });
    return {
      count: many.embeddings.length,
      dimensions: many.embeddings.map((e) => e.length),
      single: one.embedding.length,
      usage: many.usage ?? null,
    };
  },
};

function describe(error) {
  return {
    error: String(error?.message ?? error),
    name: error?.name ?? null,
    status: error?.statusCode ?? error?.lastError?.statusCode ?? null,
    body: error?.responseBody ?? error?.lastError?.responseBody ?? null,
  };
}

const ROUND_TRIPS = new Set(["tools", "tools_stream"]);
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function pause(name) {
  process.stdout.write(JSON.stringify({ pause: name }) + "\n");
  await stdinLines.next();
}

const report = {};
for (const [name, run] of Object.entries(capabilities)) {
  if (ROUND_TRIPS.has(name)) await pause(name);
  try {
    report[name] = await run();
  } catch (error) {
    report[name] = describe(error);
  }
}
process.stdout.write(JSON.stringify(report) + "\n", () => process.exit(0));
