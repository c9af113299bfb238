/**
 * CloudWatch embedded metric format: a log line whose `_aws` block tells CloudWatch which members
 * are metrics, so Lambda's stdout becomes metrics with no API call and no extra latency.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 */
export const METRICS_NAMESPACE = "LlmGateway";

export interface RequestMetrics {
  provider: string | undefined;
  status: number;
  latencyMs: number;
  ttftMs: number | undefined;
  /** Whether the answer came from anything but the first attempt of the first target. */
  fellBack: boolean;
}

export type MetricsSink = (metrics: RequestMetrics) => void;

export function emfSink(write: (line: string) => void, now: () => number): MetricsSink {
  return (m) => {
    const metrics = [
      { Name: "Requests", Unit: "Count" },
      { Name: "Errors", Unit: "Count" },
      { Name: "Fallbacks", Unit: "Count" },
      { Name: "Latency", Unit: "Milliseconds" },
      ...(m.ttftMs === undefined ? [] : [{ Name: "TimeToFirstToken", Unit: "Milliseconds" }]),
    ];
    write(
      `${JSON.stringify({
        _aws: {
          Timestamp: now(),
          CloudWatchMetrics: [
            { Namespace: METRICS_NAMESPACE, Dimensions: [["Provider"], []], Metrics: metrics },
          ],
        },
        Provider: m.provider ?? "none",
        Requests: 1,
        Errors: m.status >= 500 || m.status === 429 ? 1 : 0,
        Fallbacks: m.fellBack ? 1 : 0,
        Latency: m.latencyMs,
        ...(m.ttftMs === undefined ? {} : { TimeToFirstToken: m.ttftMs }),
      })}\n`,
    );
  };
}

/** One line per health run: how many providers are healthy or degraded (the "every provider down" alarm). */
export function emfHealthLine(available: number, total: number, now: number): string {
  return `${JSON.stringify({
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [[]],
          Metrics: [
            { Name: "AvailableProviders", Unit: "Count" },
            { Name: "CheckedProviders", Unit: "Count" },
          ],
        },
      ],
    },
    AvailableProviders: available,
    CheckedProviders: total,
  })}\n`;
}

/** The tokens of one finished request, for the token metrics (issue 12). */
export interface TokenMetrics {
  /** The model route the caller asked for. */
  model: string;
  keyId: string;
  promptTokens: number;
  completionTokens: number;
}

/**
 * `PromptTokens` and `CompletionTokens` per `Model`, and per `Model` × `KeyId` when `perKey` is set:
 * opt-in, since every distinct dimension value is a custom metric CloudWatch bills for.
 */
export function emfTokenSink(
  write: (line: string) => void,
  now: () => number,
  options: { perKey: boolean },
): (m: TokenMetrics) => void {
  const dimensions = options.perKey ? [["Model"], ["Model", "KeyId"]] : [["Model"]];
  return (m) => {
    write(
      `${JSON.stringify({
        _aws: {
          Timestamp: now(),
          CloudWatchMetrics: [
            {
              Namespace: METRICS_NAMESPACE,
              Dimensions: dimensions,
              Metrics: [
                { Name: "PromptTokens", Unit: "Count" },
                { Name: "CompletionTokens", Unit: "Count" },
              ],
            },
          ],
        },
        Model: m.model,
        ...(options.perKey ? { KeyId: m.keyId } : {}),
        PromptTokens: m.promptTokens,
        CompletionTokens: m.completionTokens,
      })}\n`,
    );
  };
}
