// Starts the vendored GraphiQL against this server, with the schema's documentation open.
// The schema comes as SDL from /explorer/schema.graphql rather than by GraphiQL's introspection query,
// which is deeper than the API's depth limit allows any client; queries go to /graphql like any API
// client's (same limits), subscriptions over the same path.
(function () {
  "use strict";
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  fetch("/explorer/schema.graphql")
    .then(function (response) {
      if (!response.ok) throw new Error("schema: HTTP " + response.status);
      return response.text();
    })
    .then(function (sdl) {
      var ws = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/graphql";
      root.render(
        React.createElement(GraphiQL, {
          schema: GraphiQL.GraphQL.buildSchema(sdl),
          fetcher: GraphiQL.createFetcher({ url: "/graphql", subscriptionUrl: ws }),
          visiblePlugin: GraphiQL.React.DOC_EXPLORER_PLUGIN,
          defaultEditorToolsVisibility: true,
          defaultQuery: "# The API of Shangquan. Documentation: the book icon on the left.\n" +
            "query Districts {\n  districts {\n    id\n    name\n    areas { id name }\n  }\n}\n",
        })
      );
    })
    .catch(function (error) {
      document.getElementById("graphiql").textContent = "The API explorer could not load the schema (" +
        error.message + "). Reload to try again.";
    });
})();
