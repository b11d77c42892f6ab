/* The variantd/variant block in the editor: slot and default variant in the
 * sidebar, the inner blocks are the fallback content. Rendered on the server
 * (Variantd_Plugin::render_block). Plain ES5 with WordPress globals: no build step. */
(function (wp) {
  var el = wp.element.createElement;
  var be = wp.blockEditor, c = wp.components, __ = wp.i18n.__;
  wp.blocks.registerBlockType('variantd/variant', {
    edit: function (props) {
      var a = props.attributes;
      return el('div', be.useBlockProps({className: 'variantd-slot-editor'}),
        el(be.InspectorControls, null,
          el(c.PanelBody, {title: __('variantd slot', 'variantd')},
            el(c.TextControl, {label: __('Slot', 'variantd'), value: a.slot,
              onChange: function (v) { props.setAttributes({slot: v}); }}),
            el(c.TextControl, {label: __('Default variant', 'variantd'), value: a.default,
              onChange: function (v) { props.setAttributes({default: v}); }}))),
        el('p', null, __('Personalized slot: ', 'variantd') + (a.slot || __('(choose a slot)', 'variantd'))),
        el(be.InnerBlocks, null));
    },
    save: function () {
      return el(be.InnerBlocks.Content, null);
    }
  });
})(window.wp);
