# PageAlloc: the API (default target) and the load generator (target "loadgen").
# Build: docker build -t pagealloc .   Run: docker run -p 8080:8080 pagealloc

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
# Restore in its own layer: only the project and build files, so code changes keep the cache.
COPY global.json Directory.Build.props Directory.Packages.props .editorconfig ./
COPY src/Domain/Domain.csproj src/Domain/
COPY src/Api/Api.csproj src/Api/
COPY src/Client/Client.csproj src/Client/
COPY tools/LoadGen/LoadGen.csproj tools/LoadGen/
RUN dotnet restore src/Api/Api.csproj && dotnet restore tools/LoadGen/LoadGen.csproj
COPY src/ src/
COPY tools/ tools/
# The kernel traces experiments replay are built into the domain assembly (KnownTraces).
COPY tests/Fixtures/traces/ tests/Fixtures/traces/
# The OpenAPI document is committed; the image build does not regenerate it. The load generator's
# client (src/Client) is generated from it by NSwag during the build.
RUN dotnet publish src/Api/Api.csproj -c Release --no-restore -o /app/api -p:OpenApiGenerateDocumentsOnBuild=false \
 && dotnet publish tools/LoadGen/LoadGen.csproj -c Release --no-restore -o /app/loadgen -p:OpenApiGenerateDocumentsOnBuild=false

FROM mcr.microsoft.com/dotnet/runtime:10.0 AS loadgen
WORKDIR /app
COPY --from=build /app/loadgen .
USER $APP_UID
# docker stop sends SIGTERM: the run stops cleanly, frees the pages it holds and prints its report.
ENTRYPOINT ["dotnet", "PageAlloc.LoadGen.dll"]
CMD ["--url", "http://api:8080", "--workload", "mixed", "--concurrency", "8", "--duration", "30s", "--no-progress"]

FROM mcr.microsoft.com/dotnet/aspnet:10.0 AS api
WORKDIR /app
COPY --from=build /app/api .
# The service on port 8080 of every interface, and health probes alone on 8081 (Limits:HealthPort:
# outside every client's share of connections, so that no client can keep the healthcheck out; not
# to be published). The machine is configured with Machine__* variables, e.g. Machine__Cpus=8 or
# Machine__Nodes__0__Zones__2__Pages=4194304.
ENV ASPNETCORE_HTTP_PORTS=8080;8081 Limits__HealthPort=8081
EXPOSE 8080
# Orleans (docker-compose.yml's "cluster" profile): 11111 silo to silo, 30000 the gateway for
# Orleans clients (Orleans__SiloPort, Orleans__GatewayPort). Silos reach each other on them over the
# compose network, each advertising its container's address; EXPOSE documents them, publishes nothing.
EXPOSE 11111 30000
USER $APP_UID
# No curl in the runtime image: bash's /dev/tcp sends the request.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8081 && printf 'GET /health/ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && grep -q Healthy <&3"]
ENTRYPOINT ["dotnet", "PageAlloc.Api.dll"]
