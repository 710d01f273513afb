-- wrk reporter: median, 95th percentile (ms) and requests per second, as JSON for bench/run.py.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"p50": %.3f, "p95": %.3f, "p99": %.3f, "rps": %.1f, "requests": %d}\n',
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.requests / seconds, summary.requests))
end
