// Starts Swagger UI on /api/v1/docs. A file rather than an inline script: the pages' CSP
// allows scripts from this server only. The settings are FastAPI's own, without the
// validator badge (it would load an image from validator.swagger.io).
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
