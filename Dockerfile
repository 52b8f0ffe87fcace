# swinq serve: Open Inference Protocol v2 (KServe v2 / Triton HTTP) with dynamic batching.
#   docker build -t swinq .
#   docker run --rm -p 8080:8080 -v "$PWD/models:/models:ro" swinq /models/swin-micro-fmnist.onnx
# The addon picks its kernel set at run time (AVX2+FMA or scalar), so the image runs on any x86-64.

FROM node:20-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake g++ make python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# Only what the build needs (no node_modules, build/ or models from the host).
COPY package.json package-lock.json .npmrc tsconfig.json CMakeLists.txt binding.gyp ./
COPY scripts ./scripts
COPY native ./native
COPY src ./src
# npm ci builds the addon (install script: cmake-js) and the TypeScript (prepare: tsc).
RUN npm ci && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/build/Release/swinq.node ./build/Release/swinq.node
USER node
EXPOSE 8080
# SIGTERM (docker stop, Kubernetes) drains in-flight requests and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "dist/cli/main.js", "serve", "--host", "0.0.0.0", "--port", "8080"]
CMD ["/models/model.onnx"]
