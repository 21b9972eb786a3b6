// backpropd/whole-component-refs: every $ref names a whole component,
// #/components/<kind>/<name>. Dredd and several code generators resolve
// nothing deeper (a reference into another schema's properties).
const wholeComponent = /^#\/components\/[A-Za-z]+\/[^/]+$/;

module.exports = function backpropdPlugin() {
  return {
    id: 'backpropd',
    rules: {
      oas3: {
        'whole-component-refs': () => ({
          ref(node, { report, location }) {
            if (!wholeComponent.test(node.$ref)) {
              report({
                message: `$ref ${node.$ref} must name a whole component (#/components/<kind>/<name>); make the shared piece a component`,
                location: location.child('$ref'),
              });
            }
          },
        }),
      },
    },
  };
};
