package io.jobseal.demo.android

import android.app.Activity
import android.graphics.Typeface
import android.os.Build
import android.view.View
import android.view.ViewGroup
import android.widget.Button
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView

// The demo builds its views in code with framework widgets only (no AndroidX, no layouts), so
// that the same sources compile against a plain Android framework jar (Robolectric's android-all)
// for the JVM screen tests. Views that tests look for carry a string tag.

/** A scrolling vertical column as the activity's content. */
fun Activity.column(): LinearLayout {
    val column = LinearLayout(this).apply {
        orientation = LinearLayout.VERTICAL
        val pad = (16 * resources.displayMetrics.density).toInt()
        setPadding(pad, pad, pad, pad)
    }
    setContentView(ScrollView(this).apply { addView(column) })
    return column
}

fun ViewGroup.text(tag: String? = null, size: Float = 16f, bold: Boolean = false): TextView =
    TextView(context).apply {
        this.tag = tag
        textSize = size
        if (bold) setTypeface(typeface, Typeface.BOLD)
        setTextIsSelectable(false)
        this@text.addView(this)
    }

fun ViewGroup.button(label: String, tag: String, onClick: () -> Unit): Button =
    Button(context).apply {
        text = label
        this.tag = tag
        setOnClickListener { onClick() }
        this@button.addView(this)
    }

fun ViewGroup.section(tag: String? = null): LinearLayout =
    LinearLayout(context).apply {
        orientation = LinearLayout.VERTICAL
        this.tag = tag
        this@section.addView(this)
    }

/**
 * A text view for a revealed customer value: not selectable (no copy to the clipboard), no
 * long-click menu, never offered to autofill, and its text is not kept in saved instance state.
 */
fun ViewGroup.secretText(tag: String): TextView = text(tag, size = 18f, bold = true).apply {
    isLongClickable = false
    isSaveEnabled = false
    setFreezesText(false)
    if (Build.VERSION.SDK_INT >= 26) importantForAutofill = View.IMPORTANT_FOR_AUTOFILL_NO_EXCLUDE_DESCENDANTS
}

/** The view with [tag] in this activity, for tests. */
fun <T : View> Activity.byTag(tag: String): T? = window.decorView.findViewWithTag(tag)
